"""hikd.config: TOML + environment -> Config, problems with key paths, passwords, check-config."""

from __future__ import annotations

import io
import secrets
import textwrap
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict, SecretStr

from hikd.config import (
    AlarmsConfig,
    ArmingConfig,
    Config,
    DaemonConfig,
    DeviceConfig,
    ListenConfig,
    LoggingConfig,
    SdkConfig,
    check_config_main,
    load_config,
    read_secret_file,
    validate_section,
)
from hikd.config.observe import MetricsConfig
from hikd.errors import ConfigError
from hikd.listeners.arming import arming_options
from hikd.logs import redact
from hikd.sdk.alarms import ArmingOptions

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"


def write(tmp_path: Path, text: str, name: str = "hikd.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def problems(path: Path, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(path, env or {})
    return caught.value.problems


def new_password() -> str:
    return "pw-" + secrets.token_hex(8)


ONE_DEVICE = """
    [[devices]]
    name = "nvr"
    host = "192.168.1.64"
"""


# --- the shipped files --------------------------------------------------------------------


def test_example_config_loads() -> None:
    config = load_config(CONFIG_DIR / "hikd.example.toml", {"HIKD_PASSWORD_NVR": new_password()})
    assert [d.name for d in config.devices] == ["nvr"]
    assert config.devices[0].password_source == "HIKD_PASSWORD_NVR"


def test_example_config_documents_every_option() -> None:
    text = (CONFIG_DIR / "hikd.example.toml").read_text(encoding="utf-8")
    models: dict[str, type[BaseModel]] = {
        "sdk": SdkConfig,
        "logging": LoggingConfig,
        "daemon": DaemonConfig,
        "devices": DeviceConfig,
        "arming": ArmingConfig,
        "listen": ListenConfig,
        "alarms": AlarmsConfig,
        "metrics": MetricsConfig,
    }
    for section in Config.model_fields:
        assert f"[{section}" in text or f"[[{section}" in text, section
    for section, model in models.items():
        for key in model.model_fields:
            assert f"\n{key} = " in text or f"\n# {key} = " in text, f"{section}.{key}"
    for sink_key in ("[sinks.disk]", "[sinks.mqtt]", "[sinks.syslog]", "max_age_days", "qos"):
        assert sink_key in text


def test_demo_config_loads_with_paths_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    password = new_password()
    config = load_config(CONFIG_DIR / "demo.toml", {"HIKD_PASSWORD_DEMO_NVR": password})
    (device,) = config.devices
    assert (device.name, device.host, device.port, device.login_mode) == (
        "demo-nvr",
        "127.0.0.1",
        18080,
        "isapi",
    )
    assert device.password is not None and device.password.get_secret_value() == password
    assert config.daemon.state_dir == tmp_path / ".demo" / "state"
    assert config.daemon.picture_dir == tmp_path / ".demo" / "state" / "pictures"
    assert config.sinks["disk"]["path"] == ".demo/events"
    assert config.sinks["mqtt"] == {"host": "127.0.0.1", "port": 1883}


# --- defaults -----------------------------------------------------------------------------


def test_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, ONE_DEVICE), {"HIKD_PASSWORD_NVR": new_password()})
    assert config.sdk.log_level == 3 and config.sdk.log_dir is None
    assert config.sdk.connect_timeout_ms == 3000 and config.sdk.recv_timeout_ms == 5000
    assert config.logging.level == "info" and config.logging.format == "auto"
    assert config.daemon.state_dir == Path("/var/lib/hikd")
    assert config.daemon.picture_dir == Path("/var/lib/hikd/pictures")
    device = config.devices[0]
    assert (device.port, device.username, device.login_mode) == (80, "admin", "isapi")
    assert device.enabled and device.arm and not device.https
    assert device.allowed_addresses == ["192.168.1.64"]
    assert device.auth_retry_s == 3600.0
    assert config.alarms.hold_for("motion") == 10.0


@pytest.mark.parametrize(
    ("extra", "port"),
    [
        ("", 80),
        ("https = true", 443),
        ('login_mode = "private"', 8000),
        ('login_mode = "adaptive"', 80),
        ('login_mode = "private"\nport = 8001', 8001),
    ],
)
def test_default_port_follows_protocol(tmp_path: Path, extra: str, port: int) -> None:
    path = write(tmp_path, ONE_DEVICE + extra + "\n")
    assert load_config(path, {"HIKD_PASSWORD_NVR": "secret1"}).devices[0].port == port


def test_listen_allows_all_device_addresses_by_default(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        ONE_DEVICE
        + """
        [[devices]]
        name = "cam"
        host = "10.0.0.9"
        allowed_addresses = ["10.0.0.0/24"]
        enabled = false

        [[listen]]
        port = 7200

        [[listen]]
        address = "127.0.0.1"
        port = 7201
        allowed = ["127.0.0.1"]
        """,
    )
    config = load_config(path, {"HIKD_PASSWORD_NVR": "secret1"})
    assert config.listen[0].address == "0.0.0.0"
    assert config.listen[0].allowed == ["192.168.1.64", "10.0.0.0/24"]
    assert config.listen[1].allowed == ["127.0.0.1"]


def test_alarm_hold_times_keep_a_default(tmp_path: Path) -> None:
    path = write(tmp_path, "[alarms]\nhold_s = { video_loss = 30 }\npulse_types = []\n")
    alarms = load_config(path, {}).alarms
    assert alarms.hold_for("video_loss") == 30.0
    assert alarms.hold_for("motion") == 10.0
    assert alarms.pulse_types == []


def test_arming_maps_to_setupalarm_param_options(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[arming]\nlevel = "low"\ndeploy_type = "realtime"\n'
        "alarm_info_v40 = false\nupload_confirmation = true\nresend_after_outage = false\n",
    )
    assert arming_options(load_config(path, {}).arming) == ArmingOptions(
        level=2, deploy_type=1, alarm_info_v40=False, upload_confirmation=True
    )
    assert arming_options(ArmingConfig()) == ArmingOptions(resend_after_outage=0b11111)


def test_device_time_zone() -> None:
    fixed = DeviceConfig(name="a", host="h", timezone="-03:30").tzinfo()
    assert fixed is not None and fixed.utcoffset(None) == -timedelta(hours=3, minutes=30)
    berlin = DeviceConfig(name="a", host="h", timezone="Europe/Berlin").tzinfo()
    assert berlin is not None
    assert datetime(2024, 7, 1, 12, tzinfo=berlin).utcoffset() == timedelta(hours=2)
    assert DeviceConfig(name="a", host="h").tzinfo() is None


# --- environment --------------------------------------------------------------------------


def test_environment_beats_the_file(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[sdk]\nrecv_timeout_ms = 6000\nlog_level = 1\n[logging]\nlevel = "info"\n'
        '[sinks.mqtt]\nhost = "from-file"\nport = 1883\n',
    )
    config = load_config(
        path,
        {
            "HIKD_SDK__RECV_TIMEOUT_MS": "9000",
            "HIKD_LOGGING__LEVEL": "DEBUG",
            "HIKD_DAEMON__STATE_DIR": str(tmp_path / "state"),
            "HIKD_SINKS__MQTT__HOST": "broker.lan",
            "HIKD_CONFIG": "ignored-here",
            "UNRELATED": "x",
        },
    )
    assert config.sdk.recv_timeout_ms == 9000
    assert config.sdk.log_level == 1  # not overridden: the file's value stays
    assert config.logging.level == "debug"
    assert config.daemon.picture_dir == tmp_path / "state" / "pictures"
    assert config.sinks["mqtt"] == {"host": "broker.lan", "port": 1883}


def test_devices_as_json_from_the_environment(tmp_path: Path) -> None:
    path = write(tmp_path, "")
    env = {"HIKD_DEVICES": '[{"name": "cam", "host": "10.0.0.2", "https": true}]'}
    config = load_config(path, env | {"HIKD_PASSWORD_CAM": "secret1"})
    assert [(d.name, d.port) for d in config.devices] == [("cam", 443)]


def test_config_path_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "[logging]\nlevel = 'error'\n")
    monkeypatch.setenv("HIKD_CONFIG", str(path))
    assert load_config().logging.level == "error"


# --- problems -----------------------------------------------------------------------------


def test_bad_port_names_the_key(tmp_path: Path) -> None:
    path = write(tmp_path, ONE_DEVICE + '[[devices]]\nname = "b"\nhost = "h2"\nport = 70000\n')
    assert problems(path, {"HIKD_PASSWORD_NVR": "secret1"}) == [
        "devices.1.port: must be between 1 and 65535 (got 70000)"
    ]


def test_unknown_keys_are_named_with_a_suggestion(tmp_path: Path) -> None:
    path = write(tmp_path, "[sdk]\nlog_levle = 2\n[logigng]\nlevel = 'info'\n")
    assert sorted(problems(path)) == [
        "logigng: unknown key; did you mean 'logging'?",
        "sdk.log_levle: unknown key; did you mean 'log_level'?",
    ]


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        [sdk]
        connect_timeout_ms = 10
        recv_timeout_ms = "soon"
        [logging]
        format = "xml"
        [arming]
        upload_confirmation = "maybe"
        [[devices]]
        name = "nvr 1"
        host = "http://192.168.1.64/"
        timezone = "Mars/Olympus"
        allowed_addresses = ["not an address"]
        reconnect_min_s = 0
        [[listen]]
        address = "example.org"
        """,
    )
    assert problems(path) == [
        "sdk.connect_timeout_ms: must be between 300 and 75000 (got 10)",
        "sdk.recv_timeout_ms: must be a whole number (got 'soon')",
        "logging.format: must be one of 'auto', 'json' or 'console' (got 'xml')",
        "devices.0.name: must contain only letters, digits, '-' and '_' "
        "(it becomes part of MQTT topics) (got 'nvr 1')",
        "devices.0.host: give the address only (like 192.168.1.64 or nvr.lan), "
        "no http:// or path (got 'http://192.168.1.64/')",
        "devices.0.reconnect_min_s: must be greater than 0 (got 0)",
        "devices.0.timezone: must be a time zone name like 'Europe/Berlin' "
        "or an offset like '+01:00' (got 'Mars/Olympus')",
        "devices.0.allowed_addresses.0: must be an IP address, a network like "
        "192.168.1.0/24, or a host name (got 'not an address')",
        "arming.upload_confirmation: must be true or false (got 'maybe')",
        "listen.0.address: must be an IP address of this machine, or 0.0.0.0 for all "
        "(got 'example.org')",
        "listen.0.port: required, but not set",
    ]


def test_port_in_host_is_explained(tmp_path: Path) -> None:
    path = write(tmp_path, '[[devices]]\nname = "a"\nhost = "10.0.0.1:8000"\n')
    assert problems(path) == [
        "devices.0.host: put the port in `port = 8000`, not in host (got '10.0.0.1:8000')"
    ]


def test_toml_syntax_error_gives_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "[sdk]\nlog_level = 3\nconnect_timeout_ms 3000\n")
    assert problems(path) == [
        f"config file {path}: line 3: expected '=' after a key in a key/value pair (column 20)"
    ]


def test_missing_and_unreadable_config_files(tmp_path: Path) -> None:
    (missing,) = problems(tmp_path / "nope.toml")
    assert missing.startswith(f"config file {tmp_path / 'nope.toml'}: not found;")
    (directory,) = problems(tmp_path)
    assert directory == f"config file {tmp_path}: is a directory; give the path of the .toml file"
    binary = tmp_path / "bin.toml"
    binary.write_bytes(b"a = 1\n\xff\xfe\n")
    assert problems(binary) == [f"config file {binary}: line 2: not UTF-8 text"]


def test_duplicate_devices(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        [[devices]]
        name = "nvr"
        host = "10.0.0.1"
        [[devices]]
        name = "nvr"
        host = "10.0.0.2"
        [[devices]]
        name = "other"
        host = "10.0.0.1"
        port = 80
        [[devices]]
        name = "NVR"
        host = "10.0.0.3"
        """,
    )
    env = {"HIKD_PASSWORD_NVR": "secret1", "HIKD_PASSWORD_OTHER": "secret2"}
    assert problems(path, env) == [
        "devices.1.name: 'nvr' is already used by devices.0",
        "devices.2: 10.0.0.1 port 80 is already device 'nvr'",
        "devices.3.name: 'NVR' and 'nvr' would both read their password from "
        "HIKD_PASSWORD_NVR; rename one",
    ]


def test_listen_ports_must_not_clash(tmp_path: Path) -> None:
    path = write(
        tmp_path, "[[listen]]\nport = 7200\n[[listen]]\naddress = '127.0.0.1'\nport = 7200\n"
    )
    assert problems(path) == ["listen.1.port: port 7200 is already used by listen.0"]


def test_environment_mistakes(tmp_path: Path) -> None:
    path = write(tmp_path, ONE_DEVICE)
    env = {"HIKD_PASSWORD_NVR": "secret1"}
    assert problems(path, env | {"HIKD_SDK__LOG_LEVEL": "7"}) == [
        "sdk.log_level: must be between 0 and 3 (got '7') "
        "(from environment variable HIKD_SDK__LOG_LEVEL)"
    ]
    assert problems(path, env | {"HIKD_SDK_LOG_LEVEL": "1"}) == [
        "HIKD_SDK_LOG_LEVEL: not a hikd setting; did you mean HIKD_SDK__LOG_LEVEL?"
    ]
    assert problems(path, env | {"HIKD_DEVICES__0__PORT": "81"}) == [
        "HIKD_DEVICES__0__PORT: a list cannot be changed item by item from the environment; "
        "set HIKD_DEVICES to the whole list as JSON, or edit the config file"
    ]
    (bad_json,) = problems(path, env | {"HIKD_DEVICES": "[{oops"})
    assert bad_json.startswith("HIKD_DEVICES: not valid JSON;")


# --- passwords ----------------------------------------------------------------------------


def test_password_order_file_then_env_then_password_file_then_credential(tmp_path: Path) -> None:
    in_config, in_env, in_file, in_cred = (new_password() for _ in range(4))
    password_file = tmp_path / "nvr.password"
    password_file.write_text(f"  {in_file}  \nsecond line ignored\n")
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "nvr.password").write_text(in_cred + "\n")

    def resolved(device_toml: str, env: dict[str, str]) -> tuple[str, str]:
        path = write(tmp_path, ONE_DEVICE + device_toml)
        device = load_config(path, env | {"CREDENTIALS_DIRECTORY": str(creds)}).devices[0]
        assert device.password is not None
        return device.password.get_secret_value(), device.password_source

    env = {"HIKD_PASSWORD_NVR": in_env}
    assert resolved(f'password = "{in_config}"\n', env) == (in_config, "config file")
    assert resolved(f'password_file = "{password_file}"\n', env) == (in_env, "HIKD_PASSWORD_NVR")
    assert resolved(f'password_file = "{password_file}"\n', {}) == (in_file, str(password_file))
    assert resolved("", {}) == (in_cred, str(creds / "nvr.password"))

    (creds / "nvr.password").unlink()
    (creds / "hikd-nvr").write_text(in_cred)
    assert resolved("", {}) == (in_cred, str(creds / "hikd-nvr"))

    for password in (in_config, in_env, in_file, in_cred):
        assert redact(f"x{password}x") == "x***x"


def test_env_name_of_a_dashed_device(tmp_path: Path) -> None:
    path = write(tmp_path, '[[devices]]\nname = "garage-cam"\nhost = "h"\n')
    device = load_config(path, {"HIKD_PASSWORD_GARAGE_CAM": "secret1"}).devices[0]
    assert device.password_env == "HIKD_PASSWORD_GARAGE_CAM"
    assert device.password == SecretStr("secret1")


def test_password_problems(tmp_path: Path) -> None:
    missing = tmp_path / "missing.password"
    empty = tmp_path / "empty.password"
    empty.write_text("\n")
    path = write(
        tmp_path,
        f"""
        [[devices]]
        name = "none"
        host = "h1"
        [[devices]]
        name = "missing"
        host = "h2"
        password_file = "{missing}"
        [[devices]]
        name = "empty"
        host = "h3"
        password_file = "{empty}"
        [[devices]]
        name = "dir"
        host = "h4"
        password_file = "{tmp_path}"
        [[devices]]
        name = "both"
        host = "h5"
        password = "abcdef"
        password_file = "{empty}"
        [[devices]]
        name = "off"
        host = "h6"
        enabled = false
        """,
    )
    assert problems(path) == [
        "devices.4: set password or password_file, not both",
    ]
    path.write_text(path.read_text().replace('password = "abcdef"\n', ""))
    assert problems(path) == [
        "devices.0.password: no password for device 'none': set password_file, "
        "HIKD_PASSWORD_NONE, or a systemd credential none.password",
        f"devices.1.password_file: {missing} does not exist",
        f"devices.2.password_file: {empty} is empty (the password must be on its first line)",
        f"devices.3.password_file: {tmp_path} is a directory, not a file",
        f"devices.4.password_file: {empty} is empty (the password must be on its first line)",
    ]


def test_password_never_shown_in_problems_or_repr(tmp_path: Path) -> None:
    password = new_password()
    path = write(
        tmp_path,
        ONE_DEVICE + f'password = "{password}"\n[sinks.mqtt]\npassword = "{password}x"\n',
    )
    config = load_config(path, {})
    assert password not in repr(config) and password not in str(config)
    assert password not in repr(config.devices[0])
    assert redact(f"{password}x") == "***"  # sink credentials are registered too

    # A password of the wrong type is not echoed in the problem.
    path = write(tmp_path, ONE_DEVICE + "password = 12345678\n")
    assert problems(path) == ["devices.0.password: must be a string (in quotes)"]


def test_read_secret_file_for_sinks(tmp_path: Path) -> None:
    secret = new_password()
    file = tmp_path / "mqtt.password"
    file.write_text(secret + "\n")
    assert read_secret_file(file, "sinks.mqtt.password_file").get_secret_value() == secret
    assert redact(secret) == "***"
    with pytest.raises(ConfigError) as caught:
        read_secret_file(tmp_path / "nope", "sinks.mqtt.password_file")
    assert caught.value.problems == [
        f"sinks.mqtt.password_file: {tmp_path / 'nope'} does not exist"
    ]


# --- sink sections ------------------------------------------------------------------------


class MqttSection(BaseModel):
    model_config = ConfigDict(extra="forbid")
    host: str
    port: int = 1883
    password: SecretStr | None = None


def test_validate_section_keeps_full_key_paths() -> None:
    with pytest.raises(ConfigError) as caught:
        validate_section(MqttSection, {"port": 99.5, "hots": "x"}, "sinks.mqtt")
    assert caught.value.problems == [
        "sinks.mqtt.host: required, but not set",
        "sinks.mqtt.port: must be a whole number (got 99.5)",
        "sinks.mqtt.hots: unknown key; did you mean 'host'?",
    ]


def test_validate_section_registers_secrets() -> None:
    secret = new_password()
    section = validate_section(MqttSection, {"host": "b", "password": secret}, "sinks.mqtt")
    assert isinstance(section, MqttSection) and section.host == "b"
    assert redact(secret) == "***"


# --- hikd check-config ---------------------------------------------------------------------


def run_check(path: Path, *validators: object) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = check_config_main(path, validators, stdout=out, stderr=err)  # type: ignore[arg-type]
    return code, out.getvalue(), err.getvalue()


def test_check_config_ok(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HIKD_PASSWORD_NVR", new_password())
    path = write(tmp_path, ONE_DEVICE + "[sinks.disk]\npath = 'x'\n")
    code, out, err = run_check(path)
    assert (code, err) == (0, "")
    assert out == f"ok: {path}: 1 device (1 enabled), 0 listen ports, sinks: disk, 0 jobs\n"


def test_check_config_lists_problems_without_traceback(tmp_path: Path) -> None:
    path = write(tmp_path, "[sdk]\nlog_level = 9\nfoo = 1\n")
    code, out, err = run_check(path)
    assert (code, out) == (1, "")
    assert err.splitlines() == [
        "sdk.log_level: must be between 0 and 3 (got 9)",
        "sdk.foo: unknown key (known keys: library_dir, log_dir, log_level, connect_timeout_ms, "
        "connect_tries, recv_timeout_ms, reconnect_interval_ms, shutdown_timeout_s)",
    ]
    code, _, err = run_check(tmp_path / "missing.toml")
    assert code == 1 and "Traceback" not in err and "not found" in err


def test_check_config_runs_every_extra_validator(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HIKD_PASSWORD_NVR", new_password())
    path = write(tmp_path, ONE_DEVICE + "[sinks.mqtt]\nport = 'x'\n")

    def sinks(config: Config) -> None:
        validate_section(MqttSection, config.sinks["mqtt"], "sinks.mqtt")

    def jobs(config: Config) -> None:
        raise ConfigError(["jobs: nothing scheduled"])

    code, out, err = run_check(path, sinks, jobs)
    assert (code, out) == (1, "")
    assert err.splitlines() == [
        "sinks.mqtt.host: required, but not set",
        "sinks.mqtt.port: must be a whole number (got 'x')",
        "jobs: nothing scheduled",
    ]


def test_check_config_notes_a_password_in_the_file(tmp_path: Path) -> None:
    password = new_password()
    path = write(tmp_path, ONE_DEVICE + f'password = "{password}"\n')
    code, out, err = run_check(path)
    assert code == 0 and out.startswith("ok: ")
    assert "note: devices.0.password:" in err and password not in err
