"""canvasdata: build, shard, load and judge stylized style x object image datasets."""

__version__ = "0.1.0"
