"""The HTTP client the adapters read providers through, and its JSON decoding."""
