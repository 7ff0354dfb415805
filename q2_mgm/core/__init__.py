"""MGM's core: tokenizer, model I/O and inference, importable without QIIME 2."""
