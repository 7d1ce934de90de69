#!/usr/bin/env bash
# A local Kubernetes control plane for `make run`: etcd, kube-apiserver and kube-controller-manager
# on 127.0.0.1, no Docker, no network. Binaries come from hack/kube-assets.sh (or
# KUBEBUILDER_ASSETS if it holds them).
#
#   hack/local-control-plane.sh start          start (or reuse) it; prints `export KUBECONFIG=...`
#   hack/local-control-plane.sh stop [--purge] stop it; --purge also deletes the etcd data
#   hack/local-control-plane.sh purge          same as stop --purge
#   hack/local-control-plane.sh status         exit 0 if running and ready, 1 otherwise
#   hack/local-control-plane.sh env            print the export line if running
#
# Typical use:  eval "$(hack/local-control-plane.sh start)"
#
# Environment:
#   CLEARANCE_LCP_DIR             state dir (default ${XDG_CACHE_HOME:-~/.cache}/clearance/local-control-plane)
#   CLEARANCE_LCP_APISERVER_PORT  kube-apiserver secure port (default 6443)
#   CLEARANCE_LCP_ETCD_PORT       etcd client port (default 2379); the peer port is this + 1
#   CLEARANCE_LCP_TIMEOUT         seconds to wait for each component to become ready (default 60)
#   CLEARANCE_LCP_AUTHENTICATION_CONFIG
#                                 an AuthenticationConfiguration file (apiserver.config.k8s.io/v1) given
#                                 to kube-apiserver's --authentication-config, e.g. a JWT authenticator
#                                 trusting your OIDC provider for the console's sign-in (docs/console.md);
#                                 read when kube-apiserver starts (stop first to change it), and again
#                                 by kube-apiserver whenever the file changes
#
# kube-controller-manager runs only the controllers a cluster without nodes can use: the garbage
# collector (deleting an APIKey deletes its Secret through the owner reference), the namespace
# controller (a deleted namespace is emptied and goes away), and the ServiceAccount and token
# controllers (every namespace gets its `default` ServiceAccount). There is no scheduler and no
# node: Pods stay Pending, Deployments get no ReplicaSets.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
STATE_DIR="${CLEARANCE_LCP_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/clearance/local-control-plane}"
APISERVER_PORT="${CLEARANCE_LCP_APISERVER_PORT:-6443}"
ETCD_PORT="${CLEARANCE_LCP_ETCD_PORT:-2379}"
TIMEOUT="${CLEARANCE_LCP_TIMEOUT:-60}"
HOST=127.0.0.1

CERT_DIR="$STATE_DIR/pki"
DATA_DIR="$STATE_DIR/etcd-data"
KUBECONFIG_FILE="$STATE_DIR/kubeconfig"
KCM_KUBECONFIG_FILE="$STATE_DIR/kube-controller-manager.kubeconfig" # the same admin, a file of its own
PORTS_FILE="$STATE_DIR/ports"   # ports of the running instance, written at start
LOCK_FILE="$STATE_DIR/.lock"

log() { echo "local-control-plane: $*" >&2; }
die() { log "error: $*"; exit 1; }

for v in APISERVER_PORT ETCD_PORT TIMEOUT; do
  [[ "${!v}" =~ ^[0-9]+$ ]] || die "$v must be a number, got '${!v}'"
done
(( APISERVER_PORT > 0 && APISERVER_PORT < 65536 )) || die "CLEARANCE_LCP_APISERVER_PORT out of range: $APISERVER_PORT"
(( ETCD_PORT > 0 && ETCD_PORT < 65535 )) || die "CLEARANCE_LCP_ETCD_PORT out of range: $ETCD_PORT"
AUTHN_ARGS=()
if [[ -n "${CLEARANCE_LCP_AUTHENTICATION_CONFIG:-}" ]]; then
  [[ -r "$CLEARANCE_LCP_AUTHENTICATION_CONFIG" ]] ||
    die "CLEARANCE_LCP_AUTHENTICATION_CONFIG names '$CLEARANCE_LCP_AUTHENTICATION_CONFIG', which is not a readable file: give the path of an AuthenticationConfiguration (docs/console.md)"
  AUTHN_ARGS=(--authentication-config="$(cd "$(dirname "$CLEARANCE_LCP_AUTHENTICATION_CONFIG")" && pwd)/$(basename "$CLEARANCE_LCP_AUTHENTICATION_CONFIG")")
fi

# curl must never go through a proxy from the environment, even for loopback.
lcurl() { curl --noproxy '*' --silent --show-error --max-time 2 "$@"; }

# ---------------------------------------------------------------------------------------------
# processes

pid_file() { echo "$STATE_DIR/$1.pid"; }

# True if $1 is a live process; a zombie (exited, not yet reaped) does not count.
pid_alive() {
  local stat
  kill -0 "$1" 2>/dev/null || return 1
  stat="$(ps -o stat= -p "$1" 2>/dev/null)" || return 1
  [[ "$stat" != Z* ]]
}

# Prints the pid of component $1 if its pid file names a live process that is really ours
# (its command line mentions our state dir), so a recycled pid is never mistaken for it.
running_pid() {
  local f pid cmd
  f="$(pid_file "$1")"
  [[ -r "$f" ]] || return 1
  pid="$(cat "$f" 2>/dev/null)" || return 1
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  pid_alive "$pid" || return 1
  cmd="$(ps -ww -p "$pid" -o command= 2>/dev/null)" || return 1
  [[ "$cmd" == *"$1"* && "$cmd" == *"$STATE_DIR"* ]] || return 1
  echo "$pid"
}

# True if something accepts TCP connections on 127.0.0.1:$1.
port_in_use() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }

require_free_port() { # port envvar what
  if port_in_use "$1"; then
    die "port $HOST:$1 needed for $3 is already in use by another process; set $2 to a free port."
  fi
}

# Starts "$@" detached (own session, no terminal, stdin from /dev/null, output to the log) and
# records its pid. The wrapper shell writes its own pid then execs, so the pid is the binary's.
# The wrapper closes every other inherited descriptor first: the daemon must not keep our lock
# (fd 8), a caller's $(...) pipe or make's jobserver pipes open.
spawn() { # name cmd...
  local name="$1"; shift
  local logf="$STATE_DIR/$name.log"
  [[ -f "$logf" ]] && mv -f "$logf" "$logf.prev"
  rm -f "$(pid_file "$name")"
  nohup setsid bash -c '
    if [[ -d /proc/$$/fd ]]; then
      for fd in /proc/$$/fd/*; do fd="${fd##*/}"; ((fd > 2)) && eval "exec $fd>&-" 2>/dev/null; done
    else
      exec 8>&- 9>&-
    fi
    echo $$ > "$0"
    exec "$@"' "$(pid_file "$name")" "$@" \
    </dev/null >"$logf" 2>&1 8>&- &
  local i
  for ((i = 0; i < 50; i++)); do # up to 5 s for the pid file
    [[ -s "$(pid_file "$name")" ]] && return 0
    sleep 0.1
  done
  die "could not start $name (no pid file after 5 s)"
}

stop_component() { # name
  local name="$1" pid i
  if pid="$(running_pid "$name")"; then
    log "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 150; i++)); do # 15 s grace
      pid_alive "$pid" || break
      sleep 0.1
    done
    if pid_alive "$pid"; then
      log "$name did not exit after 15 s, killing it"
      kill -KILL "$pid" 2>/dev/null || true
      for ((i = 0; i < 50; i++)); do
        pid_alive "$pid" || break
        sleep 0.1
      done
      pid_alive "$pid" && die "$name (pid $pid) is still alive after SIGKILL"
    fi
  fi
  rm -f "$(pid_file "$name")"
}

show_log_tail() { # name
  local logf="$STATE_DIR/$1.log"
  if [[ -s "$logf" ]]; then
    log "last lines of $logf:"
    tail -n 30 "$logf" | sed 's/^/    /' >&2
  fi
}

# ---------------------------------------------------------------------------------------------
# health

etcd_healthy() { # port
  lcurl "http://$HOST:$1/health" 2>/dev/null | grep -q '"health":"true"'
}

apiserver_ready() { # port
  [[ "$(lcurl --cacert "$CERT_DIR/ca.crt" --cert "$CERT_DIR/admin.crt" --key "$CERT_DIR/admin.key" \
    "https://$HOST:$1/readyz" 2>/dev/null)" == ok ]]
}

# kube-controller-manager serves no health endpoint here (--secure-port=0); it is ready once its
# ServiceAccount controller has created the `default` ServiceAccount of the `default` namespace.
controller_manager_ready() { # apiserver port
  [[ "$(lcurl -o /dev/null -w '%{http_code}' --cacert "$CERT_DIR/ca.crt" --cert "$CERT_DIR/admin.crt" \
    --key "$CERT_DIR/admin.key" "https://$HOST:$1/api/v1/namespaces/default/serviceaccounts/default" 2>/dev/null)" == 200 ]]
}

# Waits up to TIMEOUT s for check "$2" (with port $3) while process $1 stays alive.
wait_for() { # name check port
  local name="$1" check="$2" port="$3" pid deadline
  deadline=$((SECONDS + TIMEOUT))
  while ((SECONDS < deadline)); do
    "$check" "$port" && return 0
    if ! pid="$(running_pid "$name")"; then
      log "$name exited while waiting for it to become ready"
      show_log_tail "$name"
      return 1
    fi
    sleep 0.5
  done
  log "$name was not ready after ${TIMEOUT} s"
  show_log_tail "$name"
  return 1
}

recorded_port() { # key
  [[ -r "$PORTS_FILE" ]] && sed -n "s/^$1=//p" "$PORTS_FILE" | head -n 1
}

is_running() {
  local port
  running_pid etcd >/dev/null && running_pid kube-apiserver >/dev/null &&
    running_pid kube-controller-manager >/dev/null || return 1
  port="$(recorded_port apiserver)"
  apiserver_ready "${port:-$APISERVER_PORT}"
}

# ---------------------------------------------------------------------------------------------
# binaries

find_assets() {
  local d="${KUBEBUILDER_ASSETS:-}"
  if [[ -n "$d" && -x "$d/kube-apiserver" && -x "$d/kube-controller-manager" && -x "$d/etcd" && -x "$d/kubectl" ]]; then
    echo "$d"
    return
  fi
  log "locating binaries with hack/kube-assets.sh (it builds them on first use, about 20 minutes)"
  d="$("$SCRIPT_DIR/kube-assets.sh")" || die "hack/kube-assets.sh failed"
  [[ -x "$d/kube-apiserver" && -x "$d/kube-controller-manager" && -x "$d/etcd" ]] ||
    die "hack/kube-assets.sh gave $d without kube-apiserver, kube-controller-manager and etcd"
  echo "$d"
}

# ---------------------------------------------------------------------------------------------
# certificates

cert_valid() { # file: exists and not expiring within a day
  [[ -s "$1" ]] && openssl x509 -in "$1" -noout -checkend 86400 >/dev/null 2>&1
}

# Signs a new key+cert "$1" with our CA: subject $2, extensions file $3.
issue_cert() { # base subject extfile
  local base="$CERT_DIR/$1"
  openssl req -new -newkey rsa:2048 -nodes -keyout "$base.key" -subj "$2" -out "$base.csr" 2>/dev/null
  openssl x509 -req -in "$base.csr" -CA "$CERT_DIR/ca.crt" -CAkey "$CERT_DIR/ca.key" \
    -set_serial "0x$(openssl rand -hex 16)" -days 3650 -sha256 -extfile "$3" -out "$base.crt" 2>/dev/null
  rm -f "$base.csr"
  chmod 600 "$base.key"
}

ensure_certs() {
  mkdir -p "$CERT_DIR"
  chmod 700 "$CERT_DIR"
  local regen=0 ext
  if ! cert_valid "$CERT_DIR/ca.crt" || [[ ! -s "$CERT_DIR/ca.key" ]]; then
    log "creating a CA in $CERT_DIR"
    openssl req -x509 -new -newkey rsa:2048 -nodes -sha256 -days 3650 \
      -keyout "$CERT_DIR/ca.key" -out "$CERT_DIR/ca.crt" -subj "/CN=clearance-local-ca" \
      -addext "basicConstraints=critical,CA:TRUE" \
      -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    chmod 600 "$CERT_DIR/ca.key"
    regen=1
  fi
  ext="$CERT_DIR/.ext.$$"
  if ((regen)) || ! cert_valid "$CERT_DIR/apiserver.crt" || [[ ! -s "$CERT_DIR/apiserver.key" ]]; then
    log "creating the apiserver serving certificate"
    cat >"$ext" <<'EOF'
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,IP:10.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc
EOF
    issue_cert apiserver "/CN=kube-apiserver" "$ext"
  fi
  if ((regen)) || ! cert_valid "$CERT_DIR/admin.crt" || [[ ! -s "$CERT_DIR/admin.key" ]]; then
    log "creating the clearance-admin client certificate (group system:masters)"
    cat >"$ext" <<'EOF'
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth
EOF
    issue_cert admin "/O=system:masters/CN=clearance-admin" "$ext"
  fi
  rm -f "$ext"
  if [[ ! -s "$CERT_DIR/sa.key" || ! -s "$CERT_DIR/sa.pub" ]]; then
    log "creating the service-account signing key"
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$CERT_DIR/sa.key" 2>/dev/null
    openssl pkey -in "$CERT_DIR/sa.key" -pubout -out "$CERT_DIR/sa.pub" 2>/dev/null
    chmod 600 "$CERT_DIR/sa.key"
  fi
}

b64() { base64 <"$1" | tr -d '\n'; }

write_kubeconfig() { # port [file]
  local file="${2:-$KUBECONFIG_FILE}"
  local tmp="$file.tmp.$$"
  (
    umask 077
    cat >"$tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: clearance-local
  cluster:
    server: https://$HOST:$1
    certificate-authority-data: $(b64 "$CERT_DIR/ca.crt")
users:
- name: clearance-admin
  user:
    client-certificate-data: $(b64 "$CERT_DIR/admin.crt")
    client-key-data: $(b64 "$CERT_DIR/admin.key")
contexts:
- name: clearance-local
  context:
    cluster: clearance-local
    user: clearance-admin
current-context: clearance-local
EOF
  )
  mv -f "$tmp" "$file"
}

export_line() { printf 'export KUBECONFIG=%q\n' "$KUBECONFIG_FILE"; }

# ---------------------------------------------------------------------------------------------
# commands

STARTED=()
on_start_failure() {
  local i
  for ((i = ${#STARTED[@]} - 1; i >= 0; i--)); do stop_component "${STARTED[i]}" || true; done
}

cmd_start() {
  mkdir -p "$STATE_DIR"
  exec 8>"$LOCK_FILE"
  flock -w 120 8 || die "another '$0 start/stop' holds $LOCK_FILE for over 120 s"

  local etcd_port="$ETCD_PORT" api_port="$APISERVER_PORT" assets="" etcd_pid api_pid kcm_pid
  etcd_pid="$(running_pid etcd)" || etcd_pid=""
  api_pid="$(running_pid kube-apiserver)" || api_pid=""
  kcm_pid="$(running_pid kube-controller-manager)" || kcm_pid=""

  # A running instance keeps the ports it was started with.
  if [[ -n "$etcd_pid" ]]; then
    etcd_port="$(recorded_port etcd)"; etcd_port="${etcd_port:-$ETCD_PORT}"
    [[ "$etcd_port" == "$ETCD_PORT" ]] ||
      log "warning: etcd is already running on port $etcd_port (not $ETCD_PORT); reusing it, run 'stop' first to change ports"
  fi
  if [[ -n "$api_pid" ]]; then
    api_port="$(recorded_port apiserver)"; api_port="${api_port:-$APISERVER_PORT}"
    [[ "$api_port" == "$APISERVER_PORT" ]] ||
      log "warning: kube-apiserver is already running on port $api_port (not $APISERVER_PORT); reusing it, run 'stop' first to change ports"
  fi

  if [[ -n "$etcd_pid" && -n "$api_pid" && -n "$kcm_pid" ]] && apiserver_ready "$api_port"; then
    write_kubeconfig "$api_port"
    log "already running (kube-apiserver https://$HOST:$api_port, etcd http://$HOST:$etcd_port, kube-controller-manager)"
    export_line
    return 0
  fi

  # If etcd is down the apiserver must be restarted against the new etcd as well.
  if [[ -z "$etcd_pid" && -n "$api_pid" ]]; then
    stop_component kube-apiserver
    api_pid=""
    api_port="$APISERVER_PORT"
  fi
  if [[ -z "$etcd_pid" ]]; then
    require_free_port "$etcd_port" CLEARANCE_LCP_ETCD_PORT "etcd (client)"
    require_free_port "$((etcd_port + 1))" CLEARANCE_LCP_ETCD_PORT "etcd (peer, client port + 1)"
  fi
  [[ -n "$api_pid" ]] || require_free_port "$api_port" CLEARANCE_LCP_APISERVER_PORT kube-apiserver
  printf 'etcd=%s\napiserver=%s\n' "$etcd_port" "$api_port" >"$PORTS_FILE"

  ensure_certs
  trap on_start_failure EXIT

  if [[ -z "$etcd_pid" ]]; then
    assets="$(find_assets)"
    mkdir -p "$DATA_DIR"
    chmod 700 "$DATA_DIR"
    local peer="http://$HOST:$((etcd_port + 1))" client="http://$HOST:$etcd_port"
    log "starting etcd on $client (data in $DATA_DIR)"
    STARTED+=(etcd)
    spawn etcd "$assets/etcd" \
      --name=clearance-local \
      --data-dir="$DATA_DIR" \
      --listen-client-urls="$client" \
      --advertise-client-urls="$client" \
      --listen-peer-urls="$peer" \
      --initial-advertise-peer-urls="$peer" \
      --initial-cluster="clearance-local=$peer" \
      --unsafe-no-fsync=true
  fi
  wait_for etcd etcd_healthy "$etcd_port" || die "etcd did not become healthy (log: $STATE_DIR/etcd.log)"

  if [[ -z "$api_pid" ]]; then
    [[ -n "$assets" ]] || assets="$(find_assets)"
    log "starting kube-apiserver on https://$HOST:$api_port"
    STARTED+=(kube-apiserver)
    spawn kube-apiserver "$assets/kube-apiserver" \
      --etcd-servers="http://$HOST:$etcd_port" \
      --bind-address="$HOST" \
      --advertise-address="$HOST" \
      --secure-port="$api_port" \
      --endpoint-reconciler-type=none \
      --cert-dir="$CERT_DIR" \
      --authorization-mode=RBAC \
      --client-ca-file="$CERT_DIR/ca.crt" \
      --tls-cert-file="$CERT_DIR/apiserver.crt" \
      --tls-private-key-file="$CERT_DIR/apiserver.key" \
      --service-cluster-ip-range=10.0.0.0/24 \
      --allow-privileged=true \
      --service-account-issuer=https://kubernetes.default.svc \
      --service-account-key-file="$CERT_DIR/sa.pub" \
      --service-account-signing-key-file="$CERT_DIR/sa.key" \
      "${AUTHN_ARGS[@]}"
  fi
  log "waiting up to ${TIMEOUT} s for kube-apiserver /readyz"
  wait_for kube-apiserver apiserver_ready "$api_port" || die "kube-apiserver did not become ready (log: $STATE_DIR/kube-apiserver.log)"

  # A controller-manager left from an earlier apiserver is replaced with one reading the
  # kubeconfig of this one.
  if [[ -n "$kcm_pid" && -z "$api_pid" ]]; then
    stop_component kube-controller-manager
    kcm_pid=""
  fi
  if [[ -z "$kcm_pid" ]]; then
    [[ -n "$assets" ]] || assets="$(find_assets)"
    write_kubeconfig "$api_port" "$KCM_KUBECONFIG_FILE"
    log "starting kube-controller-manager (garbage collector, namespace and ServiceAccount controllers)"
    STARTED+=(kube-controller-manager)
    spawn kube-controller-manager "$assets/kube-controller-manager" \
      --kubeconfig="$KCM_KUBECONFIG_FILE" \
      --authentication-kubeconfig="$KCM_KUBECONFIG_FILE" \
      --authorization-kubeconfig="$KCM_KUBECONFIG_FILE" \
      --controllers=garbage-collector-controller,namespace-controller,serviceaccount-controller,serviceaccount-token-controller \
      --service-account-private-key-file="$CERT_DIR/sa.key" \
      --root-ca-file="$CERT_DIR/ca.crt" \
      --use-service-account-credentials=false \
      --leader-elect=false \
      --secure-port=0
  fi
  log "waiting up to ${TIMEOUT} s for kube-controller-manager (the default ServiceAccount)"
  wait_for kube-controller-manager controller_manager_ready "$api_port" ||
    die "kube-controller-manager did not become ready (log: $STATE_DIR/kube-controller-manager.log)"

  trap - EXIT
  write_kubeconfig "$api_port"
  log "ready: kube-apiserver https://$HOST:$api_port, etcd http://$HOST:$etcd_port, kube-controller-manager; logs in $STATE_DIR"
  export_line
}

cmd_stop() { # [purge]
  [[ -d "$STATE_DIR" ]] || { log "not running"; return 0; }
  exec 8>"$LOCK_FILE"
  flock -w 120 8 || die "another '$0 start/stop' holds $LOCK_FILE for over 120 s"
  local was=0
  { running_pid kube-controller-manager || running_pid kube-apiserver || running_pid etcd; } >/dev/null && was=1
  stop_component kube-controller-manager
  stop_component kube-apiserver
  stop_component etcd
  rm -f "$PORTS_FILE"
  if [[ "${1:-}" == purge ]]; then
    rm -rf "$DATA_DIR"
    log "stopped; deleted etcd data in $DATA_DIR"
  elif ((was)); then
    log "stopped"
  else
    log "not running"
  fi
}

cmd_status() {
  if is_running; then
    log "running: kube-apiserver https://$HOST:$(recorded_port apiserver) (pid $(running_pid kube-apiserver)), etcd http://$HOST:$(recorded_port etcd) (pid $(running_pid etcd)), kube-controller-manager (pid $(running_pid kube-controller-manager)); KUBECONFIG=$KUBECONFIG_FILE"
    return 0
  fi
  local e a c
  e="$(running_pid etcd)" && e="running (pid $e)" || e="not running"
  a="$(running_pid kube-apiserver)" && { apiserver_ready "$(recorded_port apiserver)" && a="running (pid $a)" || a="running but not ready (pid $a)"; } || a="not running"
  c="$(running_pid kube-controller-manager)" && c="running (pid $c)" || c="not running"
  log "not running (etcd: $e, kube-apiserver: $a, kube-controller-manager: $c)"
  return 1
}

cmd_env() {
  is_running || die "not running; start it with: $0 start"
  export_line
}

usage() {
  sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

case "${1:-}" in
  start) [[ $# -eq 1 ]] || usage; cmd_start ;;
  stop)
    case "${2:-}" in
      "") [[ $# -eq 1 ]] || usage; cmd_stop ;;
      --purge) [[ $# -eq 2 ]] || usage; cmd_stop purge ;;
      *) usage ;;
    esac ;;
  purge) [[ $# -eq 1 ]] || usage; cmd_stop purge ;;
  status) [[ $# -eq 1 ]] || usage; cmd_status ;;
  env) [[ $# -eq 1 ]] || usage; cmd_env ;;
  *) usage ;;
esac
