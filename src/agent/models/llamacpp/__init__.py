"""llama.cpp machinery behind the embedded backend, one module per concern.

- `paths`: where the GGUF model file is and which names it answers to;
- `settings`: how the in-process server is sized (operator configuration only);
- `endpoint`: the HTTP client of a running llama.cpp server (props, /tokenize, chat models);
- `server`: the in-process server itself (xllamacpp), one per process, and served ones by URL;
- `gguf`, `special`: the model file's metadata and the role-forgery guard.
"""
