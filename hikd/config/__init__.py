"""hikd's configuration: ``hikd.toml`` + ``HIKD_*`` environment, validated per section.

The public API; the parts live in small modules:

* `models` - one pydantic model per section, and `Config`;
* `loader` - `load_config()`: TOML file + environment -> `Config`, problems with key paths;
* `passwords` - where each device's password comes from;
* `problems` - pydantic errors -> one-line problems, `validate_section()` for sinks;
* `check` - `hikd check-config`.
"""

from hikd.config.check import check_config_main
from hikd.config.loader import DEFAULT_PATH, config_path, load_config, read_toml
from hikd.config.models import (
    AlarmsConfig,
    ArmingConfig,
    Config,
    DaemonConfig,
    DeviceConfig,
    ListenConfig,
    LoggingConfig,
    SdkConfig,
    Validator,
    default_port,
    is_secret_key,
)
from hikd.config.passwords import read_secret_file
from hikd.config.problems import validate_section
from hikd.plain_config import password_env_name

__all__ = [
    "DEFAULT_PATH",
    "AlarmsConfig",
    "ArmingConfig",
    "Config",
    "DaemonConfig",
    "DeviceConfig",
    "ListenConfig",
    "LoggingConfig",
    "SdkConfig",
    "Validator",
    "check_config_main",
    "config_path",
    "default_port",
    "is_secret_key",
    "load_config",
    "password_env_name",
    "read_secret_file",
    "read_toml",
    "validate_section",
]
