"""Readers turn input files into batches of documents."""
