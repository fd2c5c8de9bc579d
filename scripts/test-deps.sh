#!/usr/bin/env bash
# Install the Debian packages the tests' real peers need, only when they are missing:
# slapd + ldap-utils + openssl (dirsync tests: a throwaway LDAP server with a test CA),
# PostgreSQL (store tests on PostgreSQL; pg_basebackup for the replicated pair), pgbouncer
# (a throwaway PgBouncer in front of it, in session and transaction pooling; the
# package's own service never starts), swaks
# (the README's commands, run as written, and a client with its own habits: HELO,
# STARTTLS, AUTH, leaving mid-transaction) with libnet-ssleay-perl (swaks' STARTTLS), msmtp (a mail client we did not write, sending
# the text corpus to the listener), mutt (the terminal mail client, run in batch mode with
# a throwaway muttrc: its own MIME habits sending to the listener, and its reply to a
# conversation mail texted back), postfix (a throwaway instance relaying to the
# listener; the package is told "No configuration" and its own daemon never starts),
# libsasl2-modules + sasl2-bin (that Postfix's SMTP AUTH: Cyrus SASL's PLAIN/LOGIN for its
# client and smtpd, and saslpasswd2 for its smtpd's sasldb in the temp dir; sasl2-bin's
# saslauthd never starts),
# nodejs + npm (the node-smpp SMSC peer and ESME
# client, whose npm packages go into the git-ignored tests/peers/node_smpp/node_modules,
# pinned by package-lock.json), libnet-smpp-perl (the Net::SMPP SMSC peer) and systemd
# (systemd-analyze checks the shipped unit files offline; systemd need not be running),
# chromium (the portal's browser tests drive Debian's Chromium through Playwright; no
# browser is downloaded), and rabbitmq-server + redis-server + python3-venv (the Jasmin
# SMS gateway peer: throwaway RabbitMQ and Redis, never the packages' own services, and
# Jasmin in its own git-ignored virtualenv tests/peers/jasmin/venv, made with Debian's
# python3 from the pinned tests/peers/jasmin/requirements.txt; wheels and pure-Python
# sdists only, no compiler needed), samba-ad-dc + samba + samba-common-bin +
# samba-ad-provision (dirsync's Active Directory tests: a throwaway Samba AD DC provisioned
# in a temp dir, serving LDAP only on an address of its own in 127.0.0.0/8; the packages'
# own samba, smbd and nmbd services never start), kannel (a customer's Kannel SMS gateway,
# bearerbox + smsbox from a throwaway kannel.conf, bound to the bridge's SMPP server; the
# package's own service never starts); and Debian's exim4 packages, downloaded
# and unpacked (never installed, see exim_peer).
set -euo pipefail
cd "$(dirname "$0")/.."

node_peer() {
  local dir=tests/peers/node_smpp
  [ -f "$dir/node_modules/smpp/package.json" ] && return 0
  echo "test-deps: installing the node SMSC peer's npm packages into $dir/node_modules"
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
}

jasmin_peer() {
  local dir=tests/peers/jasmin
  cmp -s "$dir/requirements.txt" "$dir/venv/requirements.installed" && return 0
  echo "test-deps: installing the Jasmin peer into $dir/venv"
  rm -rf "$dir/venv"
  /usr/bin/python3 -m venv "$dir/venv"
  "$dir/venv/bin/pip" install -q --no-input --disable-pip-version-check -r "$dir/requirements.txt"
  cp "$dir/requirements.txt" "$dir/venv/requirements.installed"
}

# Exim (a company MTA in front of the listener and behind the mailer): Debian's exim4
# packages conflict with postfix (both are mail-transport-agent), so they are never
# installed: downloaded and unpacked into the git-ignored tests/peers/exim/root, with the
# system user Debian-exim its binary is built for (as the package's postinst adds it).
exim_peer() {
  local dir=tests/peers/exim
  mkdir -p "$dir"
  if [ ! -x "$dir/root/usr/sbin/exim4" ]; then
    echo "test-deps: unpacking Debian's exim4 into $dir/root (not installed: it conflicts with postfix)"
    local debs
    debs=$(mktemp -d)
    chmod 755 "$debs"
    # a fresh machine may have no package lists yet
    (cd "$debs" && { $SUDO apt-get download -qq exim4-daemon-light exim4-base exim4-config \
      || { $SUDO apt-get update -qq && $SUDO apt-get download -qq exim4-daemon-light \
        exim4-base exim4-config; }; })
    rm -rf "$dir/root.partial"
    for deb in "$debs"/*.deb; do dpkg-deb -x "$deb" "$dir/root.partial"; done
    mv "$dir/root.partial" "$dir/root"
    rm -rf "$debs"
  fi
  # the libraries exim4-daemon-light's binary links (its package's Depends), installed
  local libs=(libcrypt1 libdb5.3 libgnutls-dane0 libgnutls30 libidn12 libidn2-0 libnsl2
    libpcre2-8-0)
  local need=()
  for lib in "${libs[@]}"; do dpkg -s "$lib" >/dev/null 2>&1 || need+=("$lib"); done
  if [ ${#need[@]} -gt 0 ]; then
    echo "test-deps: installing the libraries Exim needs: ${need[*]}"
    $SUDO apt-get update -qq || true
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      "${need[@]}"
  fi
  getent passwd Debian-exim >/dev/null || $SUDO useradd --system --user-group \
    --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin Debian-exim
}

SUDO=""
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi

missing=()
have_pg() {
  command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1 \
    && command -v pg_basebackup >/dev/null 2>&1 && return 0
  ls /usr/lib/postgresql/*/bin/initdb /usr/lib/postgresql/*/bin/pg_basebackup >/dev/null 2>&1
}
command -v slapd >/dev/null 2>&1 || [ -x /usr/sbin/slapd ] || missing+=(slapd)
command -v ldapwhoami >/dev/null 2>&1 || missing+=(ldap-utils)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
have_pg || missing+=(postgresql)
command -v pgbouncer >/dev/null 2>&1 || [ -x /usr/sbin/pgbouncer ] || missing+=(pgbouncer)
command -v swaks >/dev/null 2>&1 || missing+=(swaks)
perl -MNet::SSLeay -e1 >/dev/null 2>&1 || missing+=(libnet-ssleay-perl)
command -v msmtp >/dev/null 2>&1 || missing+=(msmtp)
command -v mutt >/dev/null 2>&1 || missing+=(mutt)
[ -x /usr/sbin/postfix ] || missing+=(postfix)
compgen -G '/usr/lib/*/sasl2/libplain.so' >/dev/null || missing+=(libsasl2-modules)
[ -x /usr/sbin/saslpasswd2 ] || missing+=(sasl2-bin)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
perl -MNet::SMPP -e1 >/dev/null 2>&1 || missing+=(libnet-smpp-perl)
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
[ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || missing+=(rabbitmq-server)
command -v redis-server >/dev/null 2>&1 || [ -x /usr/bin/redis-server ] || missing+=(redis-server)
/usr/bin/python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3-venv)
[ -x /usr/sbin/samba ] || missing+=(samba-ad-dc samba)
command -v samba-tool >/dev/null 2>&1 || missing+=(samba-common-bin)
[ -d /usr/share/samba/setup/ad-schema ] || missing+=(samba-ad-provision)
[ -x /usr/sbin/bearerbox ] && [ -x /usr/sbin/smsbox ] || missing+=(kannel)

if [ ${#missing[@]} -eq 0 ]; then
  node_peer
  jasmin_peer
  exim_peer
  exit 0
fi
echo "test-deps: installing Debian packages: ${missing[*]}"
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "test-deps: need root (or sudo) to install ${missing[*]}" >&2; exit 1; }
  SUDO="sudo"
fi
# Never start the packages' own daemons: the tests run throwaway servers themselves.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod +x /usr/sbin/policy-rc.d
  trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
fi
export DEBIAN_FRONTEND=noninteractive
if [[ " ${missing[*]} " == *" postfix "* ]] && command -v debconf-set-selections >/dev/null; then
  echo "postfix postfix/main_mailer_type select No configuration" | $SUDO debconf-set-selections
fi
$SUDO apt-get update -qq || true
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
node_peer
jasmin_peer
exim_peer
