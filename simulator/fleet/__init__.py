"""A district of school machines on one laptop: generated configs, a modelled school day, one broker."""
