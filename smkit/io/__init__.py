"""Files: smkit checkpoint folders, Hugging Face folders and adapters, corpora and tokenizers."""
