"""Arming, listening and decoding: SDK callbacks in, `Event`s out."""
