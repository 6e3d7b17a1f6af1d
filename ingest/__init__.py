"""The write path of specmem: the spec model, frontmatter parsing and validation, spec edits,
chunking, embedding and indexing. Never imports `retriever`."""
