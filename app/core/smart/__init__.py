"""The smart tools without Qt: superpixels, Segment Anything's prompts and prefetched embeddings, their gestures,
and the label clean-up."""
