from setuptools import find_packages, setup

# train/ and search_spaces/ stay top-level folders of the checkout (the design card's layout) but install
# inside the package, as mobile_mote.train and mobile_mote.search_spaces, so that installing mobile_mote
# puts no generic top-level name such as `train` into a user's site-packages.
INSIDE = ("search_spaces", "train")

setup(
    packages=find_packages(include=["mobile_mote", "mobile_mote.*"])
    + [f"mobile_mote.{p}" for d in INSIDE for p in [d] + [f"{d}.{s}" for s in find_packages(d)]],
    package_dir={f"mobile_mote.{d}": d for d in INSIDE},
)
