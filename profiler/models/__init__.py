"""Model building with nnabla (NNP + ONNX per module or network) and the models manifest."""
