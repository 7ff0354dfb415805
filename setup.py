from setuptools import find_packages, setup

setup(
    name="q2-mgm",
    version="0.1.0",
    description="MGM, the Microbial General Model, as a QIIME 2 plugin",
    license="MIT",
    packages=find_packages(include=["q2_mgm", "q2_mgm.*"]),
    python_requires=">=3.9",
    install_requires=["torch>=2.1", "transformers>=4.46,<5", "accelerate>=0.26", "safetensors", "pandas", "scipy", "matplotlib"],
    package_data={"q2_mgm": ["citations.bib", "visualizers/assets/*/*"]},
    entry_points={"qiime2.plugins": ["q2-mgm=q2_mgm.plugin_setup:plugin"]},
    zip_safe=False,
)
