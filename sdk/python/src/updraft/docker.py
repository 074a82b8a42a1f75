"""`DockerOperator` (Airflow's `docker` provider): one container, run by updraft's worker
(`operator: docker`) as `docker run`: its output is the log, its last line the XCom, its exit
code the outcome."""

from .baseoperator import BaseOperator
from .exceptions import NotSupportedByUpdraft

# Arguments updraft does not have, refused unless left at Airflow's default.
_UNSUPPORTED = {
    "xcom_all": False, "retrieve_output": False, "retrieve_output_path": None,
    "container_name": None, "entrypoint": None, "env_file": None, "docker_conn_id": None,
    "tty": False, "cap_add": None, "extra_hosts": None, "dns": None, "dns_search": None,
    "port_bindings": None, "ulimits": None, "device_requests": None, "shm_size": None,
    "hostname": None, "labels": None, "ipc_mode": None, "force_pull": False,
    "tls_ca_cert": None, "tls_client_cert": None, "tls_client_key": None,
    "tls_verify": True, "tls_hostname": None, "tls_ssl_version": None,
    "host_tmp_dir": None, "log_opts_max_size": None, "log_opts_max_file": None,
}

_AUTO_REMOVE = {"never": "never", "success": "success", "force": "force",
                False: "never", True: "force"}


class DockerOperator(BaseOperator):
    """Runs `command` in a container of `image`; see updraft's README (Docker tasks)."""

    template_fields = ("image", "command", "environment")
    template_fields_renderers = {"environment": "json"}
    template_ext = ()
    ui_color = "#fff"
    _updraft_kind = "docker"

    def __init__(self, *, image, api_version=None, command=None, cpus=1.0, docker_url=None,
                 environment=None, private_environment=None, mem_limit=None,
                 network_mode=None, user=None, mounts=None, working_dir=None,
                 auto_remove="never", privileged=False, skip_on_exit_code=None,
                 mount_tmp_dir=True, tmp_dir="/tmp/airflow", timeout=60, **kwargs):
        for name, default in _UNSUPPORTED.items():
            value = kwargs.pop(name, default)
            if value != default:
                raise NotSupportedByUpdraft(f"DockerOperator's {name}")
        super().__init__(skip_on_exit_code=skip_on_exit_code, **kwargs)
        if auto_remove not in _AUTO_REMOVE:
            raise ValueError(
                f"Invalid `auto_remove` value {auto_remove!r}: use 'never', 'success' or "
                "'force'")
        self.image = image
        self.command = command
        self.cpus = cpus
        self.docker_url = docker_url
        # Airflow keeps these out of the rendered fields; updraft passes both alike.
        self.environment = dict(environment or {})
        self.private_environment = dict(private_environment or {})
        self.mem_limit = mem_limit
        self.network_mode = network_mode
        self.user = user
        self.mounts = list(mounts or [])
        self.working_dir = working_dir
        self.auto_remove = _AUTO_REMOVE[auto_remove]
        self.privileged = privileged
        # Airflow's temporary host directory mounted at tmp_dir is not made (see README).
        self.mount_tmp_dir = mount_tmp_dir
        self.tmp_dir = tmp_dir

    def docker_document(self):
        """The `docker:` of the task's document (`operator: docker`)."""
        doc = {"image": self.image}
        if self.command is not None:
            if isinstance(self.command, str):
                command = self.command.strip()
                # As Airflow: a string written as a list literal is that list.
                if command.startswith("["):
                    import ast
                    doc["command"] = [str(a) for a in ast.literal_eval(command)]
                else:
                    doc["command"] = self.command
            else:
                doc["command"] = [str(a) for a in self.command]
        environment = {**self.environment, **self.private_environment}
        if environment:
            doc["environment"] = {str(k): str(v) for k, v in environment.items()}
        if self.mounts:
            doc["mounts"] = [_mount(m) for m in self.mounts]
        for key in ("working_dir", "user", "network_mode", "docker_url"):
            value = getattr(self, key)
            if value:
                doc[key] = str(value)
        if self.auto_remove != "never":
            doc["auto_remove"] = self.auto_remove
        if self.mem_limit is not None:
            doc["mem_limit"] = (self.mem_limit if isinstance(self.mem_limit, str)
                                else int(self.mem_limit))
        if self.cpus is not None and float(self.cpus) != 1.0:
            doc["cpus"] = float(self.cpus)
        if self.privileged:
            doc["privileged"] = True
        return doc

    def execute(self, context):
        raise NotSupportedByUpdraft("Running a DockerOperator outside updraft's worker")


def _mount(mount):
    """docker's `Mount` (a dict with `Target`, `Source`, `Type`, `ReadOnly`), a dict with
    lower-case keys, or `source:target[:ro]`, as a mount of the document."""
    if isinstance(mount, str):
        parts = mount.split(":")
        if len(parts) not in (2, 3):
            raise ValueError(f"a mount is source:target[:ro], not {mount!r}")
        doc = {"source": parts[0], "target": parts[1], "type": "bind"}
        if len(parts) == 3 and parts[2] == "ro":
            doc["read_only"] = True
        return doc
    if isinstance(mount, dict):
        target = mount.get("Target", mount.get("target"))
        if not target:
            raise ValueError(f"a mount needs a target: {mount!r}")
        doc = {"target": str(target),
               "type": str(mount.get("Type", mount.get("type")) or "bind")}
        source = mount.get("Source", mount.get("source"))
        if source:
            doc["source"] = str(source)
        if mount.get("ReadOnly", mount.get("read_only")):
            doc["read_only"] = True
        return doc
    raise TypeError(f"a mount is a docker.types.Mount, a dict or a string, not "
                    f"{type(mount).__name__}")
