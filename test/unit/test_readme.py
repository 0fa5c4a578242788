"""README stays true to the code: parameter tables, node list, the two commands."""
from smartcell.core.params import markdown_table
from smartcell.topology import CELL_NODES


def test_readme_has_the_current_parameter_table_of_every_node(repo):
    readme = (repo / 'README.md').read_text()
    for node in CELL_NODES:
        assert markdown_table(node.params()) in readme, f'README parameter table of {node.name} is stale'
        assert f'| `{node.name}` |' in readme, f'README node table lacks {node.name}'


def test_readme_test_command_is_what_ci_runs(repo):
    readme = (repo / 'README.md').read_text()
    assert 'make test' in readme and 'make sim' in readme
    assert 'make test' in (repo / '.ci' / 'run').read_text()
