"""The host target: onnxruntime and nnabla on this CPU, timed in worker subprocesses."""
