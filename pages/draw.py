"""Draw: a digit on the canvas, read by your model as you draw: probabilities, preprocessing, feature maps, saliency,
how robust the reading is; and the model as a stand-alone web page."""

import streamlit as st

from cnn_core.drawing import scaled_stroke
from cnn_core.inspect import conv_layers, inspectable_layers
from cnn_core.live import analyse_drawing
from cnn_core.plots.inspect import feature_map_figure, image_strip, probability_figure, saliency_figure
from ui.classroom import share_button
from ui.draw_view import draw_layout, show_reading
from ui.model_picker import PICKED, bring_a_model, pick_checkpoint, picked_is_yours
from ui.navigation import through_app
from ui.robustness_view import robustness_panel
from ui.viewport import canvas_side, is_phone, plotly_chart
from ui.web_export import web_page_offer

through_app()
SALIENCY = {"gradient × input": "grad_x_input", "Grad-CAM": "gradcam"}
HINT = "✏️ Draw a digit in the black square: the prediction appears as soon as you lift the pen."

phone = is_phone()
st.title("✏️ Draw a digit")
ckpt = pick_checkpoint()
model, classes = ckpt.model, ckpt.info.classes
at = draw_layout(phone)
width = at.pen.slider("Stroke width", 6, 40, 18, key="stroke_width",
                        help="The pen on a 280-pixel canvas; a bigger or smaller canvas scales it.")
version = st.session_state.setdefault("canvas_version", 0) + at.clear.button("Clear the canvas")
st.session_state["canvas_version"] = version  # a new key gives a fresh, empty canvas
side = canvas_side()  # a phone's whole width, 280 px on a desktop; the pen scales with it
with at.canvas:
    from streamlit_drawable_canvas import st_canvas  # importable only inside a running Streamlit script

    canvas = st_canvas(stroke_width=scaled_stroke(width, side), stroke_color="#FFFFFF", background_color="#000000",
                       width=side, height=side, update_streamlit=True, return_image_data=True, key=f"canvas-{version}")
layers = inspectable_layers(model)
layer = at.layer.selectbox("Feature maps of layer", layers, key="draw_layer") if layers else None
methods = list(SALIENCY) if conv_layers(model) else ["gradient × input"]  # Grad-CAM needs a conv layer
method = at.method.radio("Saliency", methods, horizontal=True, key="draw_saliency")
with at.web:
    web_page_offer(ckpt, None if picked_is_yours() else st.session_state.get(PICKED), layer)  # no server needed
    bring_a_model()

# Test hook: AppTest cannot draw, so an RGBA numpy array in st.session_state["draw_image"] stands in for the canvas.
image = st.session_state.get("draw_image")
if image is None:
    image = canvas.image_data  # None until the first stroke
try:
    result = None if image is None else analyse_drawing(model, ckpt.info, image, layer, SALIENCY[method])
except ValueError:  # a blank or nearly blank canvas
    result = None
if result is None:
    at.reading.info(HINT)
    st.stop()

with at.reading:
    show_reading(result, classes, phone)
with at.probs:
    plotly_chart(probability_figure(result.probs, classes, height=200 if phone else 260), key="probs")
with at.share:
    share_button(result.steps.resized, classes[result.prediction], result.confidence, ckpt.meta["model"])
titles, arrays = zip(*result.steps.steps(), strict=True)  # inline images: no media file a newer drawing replaces
with at.steps:
    st.subheader("What the model sees")
    plotly_chart(image_strip(list(arrays), list(titles), ncols=3 if phone else len(arrays)), key="steps")
with at.maps:
    if result.maps is None:
        st.info(f"`{ckpt.meta['model']}` has no conv layer, so it makes no feature maps.")
    else:
        plotly_chart(feature_map_figure(result.maps, layer), key="maps")
title = f"where the input drove “{classes[result.prediction]}” ({method})"
with at.saliency:
    plotly_chart(saliency_figure(result.steps.resized, result.heat, title), key="heat")
with at.robust:
    robustness_panel(model, ckpt.info, result.steps.centered, classes, phone)
