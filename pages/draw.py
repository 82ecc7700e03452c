"""Draw: a digit on the canvas, read by your model as you draw: probabilities, preprocessing, feature maps, saliency;
and the model as a stand-alone web page."""

import streamlit as st

from cnn_core.inspect import conv_layers, inspectable_layers
from cnn_core.live import analyse_drawing
from cnn_core.plots.inspect import feature_map_figure, image_strip, probability_figure, saliency_figure
from ui.classroom import share_button
from ui.model_picker import PICKED, pick_checkpoint
from ui.navigation import through_app
from ui.web_export import web_page_offer

through_app()
SALIENCY = {"gradient × input": "grad_x_input", "Grad-CAM": "gradcam"}
HINT = "✏️ Draw a digit in the black square: the prediction appears as soon as you lift the pen."

st.title("✏️ Draw a digit")
ckpt = pick_checkpoint()
model, classes = ckpt.model, ckpt.info.classes
left, right = st.columns([2, 3])
with left:
    width = st.slider("Stroke width", 6, 40, 18, key="stroke_width")
    version = st.session_state.setdefault("canvas_version", 0) + st.button("Clear the canvas")
    st.session_state["canvas_version"] = version  # a new key gives a fresh, empty canvas
    from streamlit_drawable_canvas import st_canvas  # importable only inside a running Streamlit script

    canvas = st_canvas(stroke_width=width, stroke_color="#FFFFFF", background_color="#000000", width=280, height=280,
                       update_streamlit=True, return_image_data=True, key=f"canvas-{version}")
    layers = inspectable_layers(model)
    layer = st.selectbox("Feature maps of layer", layers, key="draw_layer") if layers else None
    methods = list(SALIENCY) if conv_layers(model) else ["gradient × input"]  # Grad-CAM needs a conv layer
    method = st.radio("Saliency", methods, horizontal=True, key="draw_saliency")
    web_page_offer(ckpt, st.session_state.get(PICKED), layer)  # this model in the browser alone, no server

# Test hook: AppTest cannot draw, so an RGBA numpy array in st.session_state["draw_image"] stands in for the canvas.
image = st.session_state.get("draw_image")
if image is None:
    image = canvas.image_data  # None until the first stroke
try:
    result = None if image is None else analyse_drawing(model, ckpt.info, image, layer, SALIENCY[method])
except ValueError:  # a blank or nearly blank canvas
    result = None
if result is None:
    right.info(HINT)
    st.stop()

with right:
    st.metric("Prediction", classes[result.prediction], help="the class with the highest probability")
    split = " · ".join(f"{stage} {ms:.1f}" for stage, ms in result.timings.items())
    st.caption(f"{result.confidence:.0%} sure · computed in {result.total_ms:.1f} ms ({split})")
    st.plotly_chart(probability_figure(result.probs, classes), key="probs")
    share_button(result.steps.resized, classes[result.prediction], result.confidence, ckpt.meta["model"])
st.subheader("What the model sees")
titles, arrays = zip(*result.steps.steps(), strict=True)  # inline images: no media file a newer drawing replaces
st.plotly_chart(image_strip(list(arrays), list(titles), ncols=len(arrays)), key="steps")
maps_col, saliency_col = st.columns(2)
if result.maps is None:
    maps_col.info(f"`{ckpt.meta['model']}` has no conv layer, so it makes no feature maps.")
else:
    maps_col.plotly_chart(feature_map_figure(result.maps, layer), key="maps")
title = f"where the input drove “{classes[result.prediction]}” ({method})"
saliency_col.plotly_chart(saliency_figure(result.steps.resized, result.heat, title), key="heat")
