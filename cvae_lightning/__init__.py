"""cvae-lightning: a convolutional VAE for MNIST-style images (Lightning + Hydra)."""
