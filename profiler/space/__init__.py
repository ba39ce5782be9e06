"""Search spaces (pure, no heavy imports): loading and JSON Schema, module specs and ModuleUIDs, architectures and sampling."""
