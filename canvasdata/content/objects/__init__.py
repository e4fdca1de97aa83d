"""One module per object class; each registers itself with `canvasdata.content.register_object`."""
