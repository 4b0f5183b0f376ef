"""saliencybench."""
