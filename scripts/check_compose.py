#!/usr/bin/env python3
"""Check docker-compose.yml and the Dockerfile against the repository, without a Docker engine.

Checks:
- every service's build context, Dockerfile, env_file and bind-mount source exists;
- every named volume that a service mounts is declared under the top-level `volumes`;
- every published port listens on 127.0.0.1 only;
- every depends_on entry names a service of the file;
- a Prometheus service (image prom/prometheus, or any service that bind-mounts a file at the path
  of --config.file, /etc/prometheus/prometheus.yml by default) mounts its configuration, scrapes
  only `service:port` targets where the service exists and lists the port under `ports` or
  `expose`, and has its rule files mounted too;
- services built from this repository run a `duespark` subcommand that README.md names
  (in a code span or code block, such as `duespark migrate`);
- the Dockerfile's COPY sources exist, its build stage copies every workspace member named in
  Cargo.toml, and its final stage copies templates/ and migrations/ and runs `duespark`.

Prints each problem and exits with status 1 if there is any. Needs PyYAML.
"""

import json
import posixpath
import re
import shlex
import sys
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def main():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose.get("services") or {}
    problems = []
    if not services:
        problems.append("docker-compose.yml defines no services")

    subcommands = readme_subcommands()
    declared_volumes = set(compose.get("volumes") or {})
    dockerfiles = set()
    for name, service in services.items():
        problems += check_service(name, service, services, subcommands, dockerfiles)
        problems += check_named_volumes(name, service, declared_volumes)
        problems += check_published_ports(name, service)
        problems += check_prometheus(name, service, services)
    for dockerfile in sorted(dockerfiles):
        problems += check_dockerfile(dockerfile)

    for problem in problems:
        print(f"check_compose: {problem}", file=sys.stderr)
    if problems:
        return 1
    print(f"check_compose: ok ({len(services)} services, Dockerfiles: {', '.join(map(str, sorted(dockerfiles)))})")
    return 0


def readme_subcommands():
    """Return the words that follow `duespark` inside code spans and code blocks of README.md."""
    readme = ROOT / "README.md"
    if not readme.is_file():
        return None
    text = readme.read_text()
    code = re.findall(r"```.*?```", text, flags=re.DOTALL)
    code += re.findall(r"`[^`\n]+`", re.sub(r"```.*?```", "", text, flags=re.DOTALL))
    return {match for block in code for match in re.findall(r"\bduespark\s+([a-z][a-z-]*)", block)}


def check_service(name, service, services, subcommands, dockerfiles):
    problems = []
    build = service.get("build")
    if build is not None:
        if isinstance(build, str):
            build = {"context": build}
        context = ROOT / build.get("context", ".")
        dockerfile = context / build.get("dockerfile", "Dockerfile")
        if not context.is_dir():
            problems.append(f"service {name}: build context {context} is not a directory")
        elif not dockerfile.is_file():
            problems.append(f"service {name}: Dockerfile {dockerfile} not found")
        else:
            dockerfiles.add(dockerfile.relative_to(ROOT))
        problems += check_command(name, service.get("command"), subcommands)

    env_files = service.get("env_file") or []
    for env_file in [env_files] if isinstance(env_files, str) else env_files:
        path = env_file if isinstance(env_file, str) else env_file.get("path")
        required = isinstance(env_file, str) or env_file.get("required", True)
        if required and not (ROOT / path).is_file():
            problems.append(f"service {name}: env_file {path} not found")

    for volume in service.get("volumes") or []:
        source = bind_mount_source(volume)
        if source is not None and not (ROOT / source).exists():
            problems.append(f"service {name}: bind-mount source {source} not found")

    for dependency in service.get("depends_on") or []:
        if dependency not in services:
            problems.append(f"service {name}: depends_on names unknown service {dependency}")
    return problems


def check_command(name, command, subcommands):
    if isinstance(command, str):
        command = shlex.split(command)
    if not command:
        return [f"service {name}: built from this repository but has no command (a duespark subcommand)"]
    if subcommands is None:
        return [f"service {name}: README.md not found, so subcommand {command[0]!r} cannot be checked"]
    if command[0] not in subcommands:
        named = ", ".join(sorted(subcommands)) or "none"
        return [f"service {name}: command {command[0]!r} is not a subcommand that README.md names ({named})"]
    return []


def bind_mount_source(volume):
    """Return the host path of a bind mount, or None for a named volume."""
    if isinstance(volume, dict):
        return volume.get("source") if volume.get("type") == "bind" else None
    source = volume.split(":", 1)[0]
    return source if source.startswith((".", "/", "~")) else None


def bind_mounts(service):
    """Return (host path, container path) of each bind mount of a service."""
    mounts = []
    for volume in service.get("volumes") or []:
        source = bind_mount_source(volume)
        if source is None:
            continue
        target = volume.get("target") if isinstance(volume, dict) else volume.split(":")[1]
        mounts.append((source, target))
    return mounts


def check_named_volumes(name, service, declared_volumes):
    problems = []
    for volume in service.get("volumes") or []:
        if bind_mount_source(volume) is not None:
            continue
        if isinstance(volume, dict):
            source = volume.get("source") if volume.get("type") == "volume" else None
        else:
            source = volume.split(":", 1)[0] if ":" in volume else None
        if source and source not in declared_volumes:
            problems.append(f"service {name}: named volume {source} is not declared under the top-level volumes")
    return problems


def check_published_ports(name, service):
    problems = []
    for port in service.get("ports") or []:
        if published_host_ip(port) != "127.0.0.1":
            problems.append(f"service {name}: published port {port!r} does not listen on 127.0.0.1 only. "
                            "Write it as 127.0.0.1:HOST_PORT:CONTAINER_PORT")
    return problems


def published_host_ip(port):
    """Return the host address of a published port, or None when it listens on every address."""
    if isinstance(port, dict):
        return port.get("host_ip")
    parts = str(port).split(":")
    return parts[0] if len(parts) == 3 else None


def container_ports(service):
    """Return the container ports that a service publishes or exposes, as strings."""
    ports = {str(port) for port in service.get("expose") or []}
    for port in service.get("ports") or []:
        target = port.get("target") if isinstance(port, dict) else str(port).rsplit(":", 1)[-1]
        ports.add(str(target))
    return {port.split("/", 1)[0] for port in ports}


def check_prometheus(name, service, services):
    """Check that a Prometheus service mounts its configuration and rule files and scrapes services of this file."""
    command = service.get("command") or []
    if isinstance(command, str):
        command = shlex.split(command)
    config_target = next((arg.split("=", 1)[1] for arg in command if arg.startswith("--config.file=")),
                         "/etc/prometheus/prometheus.yml")
    mounts = bind_mounts(service)
    config_source = next((source for source, target in mounts if target == config_target), None)
    if config_source is None:
        if str(service.get("image", "")).startswith("prom/prometheus"):
            return [f"service {name}: runs Prometheus but mounts no configuration file at {config_target}"]
        return []
    if not (ROOT / config_source).is_file():
        return []

    problems = []
    config = yaml.safe_load((ROOT / config_source).read_text()) or {}
    for scrape in config.get("scrape_configs") or []:
        for static in scrape.get("static_configs") or []:
            for target in static.get("targets") or []:
                host, _, port = str(target).rpartition(":")
                if host not in services:
                    problems.append(f"service {name}: {config_source} job {scrape.get('job_name')} scrapes "
                                    f"{target}, but {host!r} is not a service")
                elif port not in container_ports(services[host]):
                    problems.append(f"service {name}: {config_source} job {scrape.get('job_name')} scrapes "
                                    f"{target}, but service {host} lists no port {port} under ports or expose")

    mounted = [target.rstrip("/") for _, target in mounts]
    for rule_file in config.get("rule_files") or []:
        path = posixpath.normpath(posixpath.join(posixpath.dirname(config_target), rule_file))
        if not any(path == target or path.startswith(target + "/") for target in mounted):
            problems.append(f"service {name}: rule file {path} named in {config_source} is not mounted")
    return problems


def check_dockerfile(dockerfile):
    problems = []
    stages = parse_stages((ROOT / dockerfile).read_text())
    copies = [(index, args) for index, stage in enumerate(stages) for args in stage["copy"]]

    for _, args in copies:
        if not any(arg.startswith("--from=") for arg in args):
            for source in [arg for arg in args if not arg.startswith("--")][:-1]:
                if not (ROOT / source).exists():
                    problems.append(f"{dockerfile}: COPY source {source} not found")

    built_sources = {normalize(source) for index, args in copies if index < len(stages) - 1 for source in args[:-1]}
    members = tomllib.loads((ROOT / "Cargo.toml").read_text()).get("workspace", {}).get("members", [])
    for member in members:
        if "." not in built_sources and normalize(member) not in built_sources:
            problems.append(f"{dockerfile}: the build stage does not copy workspace member {member}")

    final = stages[-1] if stages else {"copy": [], "entrypoint": None}
    final_sources = {normalize(source) for args in final["copy"] for source in args[:-1]}
    for required in ("templates", "migrations"):
        if required not in final_sources:
            problems.append(f"{dockerfile}: the final stage does not copy {required}/")
    if final["entrypoint"] != ["duespark"]:
        problems.append(f"{dockerfile}: the final stage's ENTRYPOINT is {final['entrypoint']}, expected [\"duespark\"]")
    return problems


def parse_stages(text):
    """Split a Dockerfile into stages with their COPY arguments and exec-form ENTRYPOINT."""
    stages = []
    logical_lines = re.sub(r"\\\n", " ", text).splitlines()
    for line in logical_lines:
        words = line.strip().split(None, 1)
        if not words or words[0].startswith("#"):
            continue
        instruction, rest = words[0].upper(), words[1] if len(words) > 1 else ""
        if instruction == "FROM":
            stages.append({"copy": [], "entrypoint": None})
        elif instruction in ("COPY", "ADD") and stages:
            stages[-1]["copy"].append(shlex.split(rest))
        elif instruction == "ENTRYPOINT" and stages:
            stages[-1]["entrypoint"] = json.loads(rest) if rest.startswith("[") else shlex.split(rest)
    return stages


def normalize(path):
    return path.strip("/").removeprefix("./")


if __name__ == "__main__":
    sys.exit(main())
