"""What every example shares: data, models, the optimizers and the training loops.

    fashion_mnist   Fashion-MNIST from Debian's dataset-fashion-mnist package
    stdlib_corpus   the byte stream of the Python standard library's source, cut by position
    models          LeNet-5 and an MLP for 28 x 28 images; the byte-level transformer
    training        SGD / LSGD / MLSGD by name, one epoch of steps, the image classifier's loop
    lm_training     the byte-level language model's loop and its sizes
    progress        a plain-text progress bar

The example scripts one level up (``python examples/<name>.py``) import these as
``common.<module>``: a script's own folder is the first entry of ``sys.path``.
"""
