"""The folder layouts of cat and dog photos the project reads, as plain data (no torch, no numpy).

training/data.py (the prepare stage), training/download.py (`make data`) and the smoke test's
labelled check (serving/smoke.py) read photos with these names; the last two run in small
environments without the training stack, so the facts live here rather than in training/data.py.
"""

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp"})
# Folder names (lower-cased) that hold each class, in CLASS_NAMES order, and the folders that may
# hold those class folders: the root itself, Kaggle's PetImages/ or a train/ folder.
CLASS_DIR_NAMES = ({"cat", "cats"}, {"dog", "dogs"})
CONTAINER_DIR_NAMES = ("petimages", "train")
ACCEPTED_LAYOUTS = "PetImages/Cat + PetImages/Dog, train/cats + train/dogs, or cats/ + dogs/"
