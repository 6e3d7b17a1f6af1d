"""How one query ranks specs: the analyzer, the in-memory index of one index generation (BM25
postings, identifier postings, the vector matrix), each method's scores and their fusion.

Pure over what it is given: nothing here reads the specs dir, writes, or knows a door. The
service (retriever.service) holds the warm index (`warm_loader`) and calls `search.search_index`.
"""
