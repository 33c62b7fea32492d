"""zoo serve: the classroom page for a class of phones and a projector (``zoo.classroom.app``),
its guard on a school network (``guard``), micro-batched predictions (``batching``) and the
class's drawings with what they say about the models (``session``)."""

from zoo.classroom.app import (  # noqa: F401
                               DEFAULT_HOST,
                               DEFAULT_PORT,
                               MAX_UPLOAD_BYTES,
                               MAX_UPLOAD_PIXELS,
                               Served,
                               answer,
                               collect,
                               load_models,
                               make_app,
                               png_uri,
                               prepare,
                               serve,
)
