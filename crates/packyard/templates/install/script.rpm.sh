#!/bin/bash
# Sets up the YUM/DNF repository @@OWNER@@/@@REPO@@ from @@BASE_URL@@ on this host:
# detects the OS and release (override with os= and dist=), writes the repository's current
# signing keys to @@RPM_KEY@@ and the repository file to /etc/yum.repos.d (or
# /etc/zypp/repos.d), builds the metadata cache, then installs the package @@KEYRING_PACKAGE@@,
# which owns that key file from then on, and imports its keys into the rpm database.
# Running it again replaces the files, so a new token takes the place of an old one.
set -euo pipefail

base_url='@@BASE_URL@@'
repository='@@OWNER@@/@@REPO@@'
file_name='@@OWNER@@_@@REPO@@'
master_token='@@MASTER_TOKEN@@'
keyring_package='@@KEYRING_PACKAGE@@'
key_file='@@RPM_KEY@@'

unknown_os() {
    echo "Unfortunately, your operating system distribution and version are not supported by this script."
    echo
    echo "You can override the OS detection by setting os= and dist= before running this script."
    echo "For example, to force Enterprise Linux 9: os=el dist=9 ./script.rpm.sh"
    echo
    echo "Repository: ${base_url}/${repository}"
    exit 1
}

detect_os() {
    if [ -z "${os:-}" ] || [ -z "${dist:-}" ]; then
        if [ -e /etc/os-release ]; then
            # shellcheck disable=SC1091
            . /etc/os-release
            os=${ID:-}
            dist=${VERSION_ID:-}
        elif [ -e /etc/redhat-release ]; then
            os=el
            dist=$(sed -E 's/[^0-9]*([0-9]+).*/\1/' /etc/redhat-release)
        fi
        case "${os:-}" in
            rhel | centos | rocky | almalinux | scientific | cloudlinux) os=el ;;
            opensuse-leap) os=opensuse ;;
            sles | sled) os=sles ;;
        esac
        case "${os:-}" in
            sles | opensuse) ;;
            *) dist=${dist%%.*} ;;
        esac
    fi
    if [ -z "${os:-}" ] || [ -z "${dist:-}" ]; then
        unknown_os
    fi
    echo "Detected operating system as ${os}/${dist}."
}

host_name() {
    hostname -f 2> /dev/null || hostname 2> /dev/null || cat /etc/hostname 2> /dev/null || echo unknown-host
}

main() {
    detect_os
    if ! command -v curl > /dev/null; then
        echo "curl is required; install it and run this script again."
        exit 1
    fi

    # A private repository: trade the master token for a read token named after this host.
    local auth=()
    if [ -n "$master_token" ]; then
        local read_token
        read_token=$(curl -sSf -u "${master_token}:" --data-urlencode "name=$(host_name)" \
            "${base_url}/install/repositories/${repository}/tokens.text")
        auth=(-u "${read_token}:")
    fi

    local repos_dir=/etc/yum.repos.d
    if command -v zypper > /dev/null; then
        repos_dir=/etc/zypp/repos.d
    fi
    local repo_file="${repos_dir}/${file_name}.repo"
    local config_url="${base_url}/install/repositories/${repository}/config_file.repo?os=${os}&dist=${dist}&source=script"
    local config
    echo "Installing ${repo_file}..."
    if ! config=$(curl -sSf "${auth[@]}" "$config_url"); then
        unknown_os
    fi
    # The repository file names the key file too; dnf fails if it is missing when it imports.
    echo "Importing the repository's signing keys..."
    mkdir -p "$(dirname "$key_file")"
    curl -sSf "${auth[@]}" "${base_url}/${repository}/gpgkey" > "${key_file}.new"
    chmod 0644 "${key_file}.new"
    mv "${key_file}.new" "$key_file"
    mkdir -p "$repos_dir"
    printf '%s\n' "$config" > "$repo_file"
    chmod 0644 "$repo_file"

    echo "Building the metadata cache..."
    local installer
    if command -v zypper > /dev/null; then
        zypper --gpg-auto-import-keys refresh "$file_name"
        installer=(zypper --non-interactive install)
    elif command -v dnf > /dev/null; then
        dnf -q makecache -y --disablerepo='*' --enablerepo="$file_name"
        installer=(dnf -q -y install)
    else
        yum -q makecache -y --disablerepo='*' --enablerepo="$file_name"
        installer=(yum -q -y install)
    fi

    echo "Installing ${keyring_package}, which keeps the signing keys current..."
    if "${installer[@]}" "$keyring_package" > /dev/null; then
        # Outside any rpm transaction: a scriptlet cannot import keys (the rpm database is locked).
        rpmkeys --import "$key_file" || true
    else
        echo "Warning: ${keyring_package} could not be installed; new signing keys will need this script again."
    fi
    echo
    echo "The repository is set up! You can now install packages."
}

main
