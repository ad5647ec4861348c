#!/usr/bin/env python3
"""Check docker-compose.yml and the Dockerfile against the repository, without a Docker engine.

Checks:
- every service's build context, Dockerfile, env_file and bind-mount source exists;
- every depends_on entry names a service of the file;
- services built from this repository run a `duespark` subcommand that README.md names
  (in a code span or code block, such as `duespark migrate`);
- the Dockerfile's COPY sources exist, its build stage copies every workspace member named in
  Cargo.toml, and its final stage copies templates/ and migrations/ and runs `duespark`.

Prints each problem and exits with status 1 if there is any. Needs PyYAML.
"""

import json
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
    dockerfiles = set()
    for name, service in services.items():
        problems += check_service(name, service, services, subcommands, dockerfiles)
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
