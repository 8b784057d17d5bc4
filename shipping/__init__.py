"""From a trial to a shipped model: the export record (``shipping.export``) and reading it back (``shipping.record``),
the ONNX-against-torch check (``shipping.agreement``), int8 quantization (``shipping.quantize``) and adapting to a
camera (``shipping.adapt``). The ONNX file itself: ``deploy``."""
