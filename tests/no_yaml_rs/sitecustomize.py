"""On PYTHONPATH as sitecustomize (bench/cold_start.py, tests/test_without_yaml_rs.py): yaml_rs
cannot be imported, as if it were not installed."""
import sys


class _NoYamlRs:
    def find_spec(self, name, path=None, target=None):
        if name == "yaml_rs" or name.startswith("yaml_rs."):
            raise ModuleNotFoundError("No module named 'yaml_rs'", name=name)
        return None


sys.meta_path.insert(0, _NoYamlRs())
