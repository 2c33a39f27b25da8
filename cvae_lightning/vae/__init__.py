"""The network and its objective, in plain PyTorch: the CVAE container and its settings
(model.py), the reference recipe's encoder and decoder (reference.py) and the deeper one
(resnet.py), their shared blocks (layers.py), the decoder's likelihood (likelihood.py), the loss
(losses.py) and the posterior codes of images (latent.py)."""
