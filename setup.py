"""ament_python package for smartcell (colcon on hardware, pip in the project venv)."""
from glob import glob

from setuptools import find_packages, setup

PACKAGE = 'smartcell'

# One console script per node, from the one node list (smartcell.topology: pure Python, importable
# before the package is installed); the executable name is the node name and its YAML key.
from smartcell.topology import CELL_NODES  # noqa: E402

NODE_EXECUTABLES = {spec.name: spec.entry_point for spec in CELL_NODES}

setup(
    name=PACKAGE,
    version='0.1.0',
    packages=find_packages(exclude=['test', 'test.*', 'bench']),
    # The operator station's page and script are served from the installed package (no CDN).
    package_data={'smartcell.hmi': ['static/*']},
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + PACKAGE]),
        ('share/' + PACKAGE, ['package.xml']),
        ('share/' + PACKAGE + '/launch', glob('launch/*.py')),
        ('share/' + PACKAGE + '/config', glob('config/*.yaml') + glob('config/*.rviz') + glob('config/*.json')
         + glob('config/*.xml')),
        ('share/' + PACKAGE + '/urdf', glob('urdf/*.urdf')),
    ],
    install_requires=['setuptools'],
    zip_safe=False,
    maintainer='smartcell maintainers',
    maintainer_email='maintainers@smartcell.invalid',
    description='ROS 2 controller for a collaborative-robot cell.',
    license='Apache-2.0',
    tests_require=['pytest'],
    entry_points={
        'console_scripts': [f'{name} = {target}' for name, target in NODE_EXECUTABLES.items()]
        + ['smartcell = smartcell.cli:main'],
    },
)
