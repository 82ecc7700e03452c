"""Your examples: draw or upload a handful of examples per class (digits in your own hand, or classes of your own)
and fine-tune a trained model on them, with how it read them, and the test set, before and after."""

import streamlit as st

from cnn_core.finetune import fine_tune
from ui.examples_view import arrays, class_names, collect, hosted, keep, settings, show_result, test_split
from ui.model_picker import pick_checkpoint
from ui.navigation import through_app
from ui.viewport import is_phone

through_app()
st.title("🧑‍🎨 Your examples")
st.caption("Teach a trained model your own handwriting, or classes of its own (letters, shapes), from a handful of "
           "examples: it learns in seconds, and you see what it learned and what it forgot.")
phone = is_phone()
ckpt = pick_checkpoint()
classes = class_names(ckpt)
if classes is None:
    st.stop()
collect(classes, phone)
st.subheader("Fine-tune")
options = settings()
if st.button("Fine-tune on these examples", type="primary", icon="🎯", key="examples_fine_tune", width="stretch"):
    images, labels = arrays(classes)
    try:
        with st.spinner("Fine-tuning …"):
            result = fine_tune(ckpt, images, labels, classes, test=test_split(ckpt, classes), hosted=hosted(),
                               **options)
    except ValueError as e:  # a class without an example, too many examples
        st.error(str(e))
    else:
        keep(result, images)
show_result(phone)
