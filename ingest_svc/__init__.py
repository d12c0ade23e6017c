"""IngestService: validates and accepts notifications; an answer means durable."""
