"""One collection: scrape and probe, their deadline, read policy, runs and events."""
