from setuptools import find_packages, setup

# QIIME 2 is not on PyPI, so it cannot be a requirement here: q2-mgm supports QIIME 2 2022.11 to 2024.10 (both ends
# tested: `make test` and `make test-qiime2-2024.10`), with q2-types, q2-sample-classifier and
# q2templates of the same release; recipe/meta.yaml states the same range for conda.
SUPPORTED_QIIME2 = "QIIME 2 2022.11 to 2024.10"

setup(
    name="q2-mgm",
    version="0.1.0",
    description="MGM, the Microbial General Model, as a QIIME 2 plugin",
    long_description=f"MGM, the Microbial General Model, as a QIIME 2 plugin, for {SUPPORTED_QIIME2} on Python 3.9 "
                     "or newer. Install into an environment that has QIIME 2, with microformer-mgm==0.5.8 "
                     "installed with --no-deps (see the README).",
    license="MIT",
    packages=find_packages(include=["q2_mgm", "q2_mgm.*"]),
    # transformers >= 4.46 needs Python 3.9
    python_requires=">=3.9",
    # No install_requires, as QIIME 2's own plugins (q2-sample-classifier, q2-feature-classifier) have none: QIIME 2
    # 2022.11 loads each plugin through pkg_resources, which resolves every declared requirement, recursively, at the
    # start of every QIIME 2 command (torch's and transformers' trees took 3 s there, MGM used or not). The
    # requirements are installed as the README says (torch, "transformers>=4.46,<5", "accelerate>=0.26", safetensors,
    # then q2-mgm with --no-deps) and stated for conda in recipe/meta.yaml.
    classifiers=[
        "Programming Language :: Python :: 3",
        "Programming Language :: Python :: 3 :: Only",
        "Programming Language :: Python :: 3.9",
        "Programming Language :: Python :: 3.10",
        "Programming Language :: Python :: 3.11",
        "Topic :: Scientific/Engineering :: Bio-Informatics",
    ],
    package_data={"q2_mgm": ["citations.bib", "visualizers/assets/*/*"]},
    entry_points={"qiime2.plugins": ["q2-mgm=q2_mgm.plugin_setup:plugin"]},
    zip_safe=False,
)
