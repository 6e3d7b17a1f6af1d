"""Building the index a specs dir is searched by: chunking, token counts, embedding, the chunk
database and the vectors, the crash-safe incremental pipeline, and watching for changes."""
