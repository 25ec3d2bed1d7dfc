"""mmflux: FluxViT, flexible token budgets and Token Optimization for MMAction2."""
from setuptools import find_packages, setup

setup(
    name='mmflux',
    version='0.1.0',
    description='Deployment-efficient video transformers (FluxViT, Flux training, '
    'Token Optimization) as an MMAction2 plugin',
    long_description=open('README.md', encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    packages=find_packages(include=['mmflux', 'mmflux.*']),
    python_requires='>=3.9',
    # Exact pins live in requirements.txt (installed first, in one command, so that
    # pip never swaps torch); these are the loose runtime requirements.
    install_requires=[
        'torch>=2.1', 'torchvision', 'timm>=1.0', 'mmengine>=0.10,<0.11',
        'mmaction2>=1.2,<1.3', 'numpy<2', 'decord>=0.6',
    ],
    # optional: export to / run in ONNX Runtime and OpenVINO (exact pins: requirements/deploy.txt)
    extras_require={
        'deploy': ['onnx>=1.18', 'onnxscript>=0.5', 'onnxruntime>=1.22', 'openvino>=2025.0',
                   'ml_dtypes<0.6', 'numpy<2', 'nncf>=3.0'],
    },
    license='Apache-2.0',
)
