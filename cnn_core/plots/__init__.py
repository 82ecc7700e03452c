"""Plotly figures from arrays, one module per area; no Streamlit here either.

common: images and image grids · training: curves · inspect: kernels, confusion · lessons: convolution lab.
"""
