#!/usr/bin/env bash
# bench/git-check.sh REPAVE - the git preflight against the git CLI doing the same checks, on
# (a) 300 small repositories in mixed states and (b) one repository with 50,000 tracked and
# 2,000 untracked files. Prints both figures and the ratio; fixtures are cached in
# ${REPAVE_BENCH_CACHE:-~/.cache/repave-bench} (they take a minute to build).
set -euo pipefail
REPAVE=${1:?usage: bench/git-check.sh PATH-TO-RELEASE-REPAVE}
CACHE=${REPAVE_BENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/repave-bench}
export GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=bench@repave.invalid GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=bench@repave.invalid
export GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1
RUNS=${BENCH_RUNS:-5}

# ---------- fixtures ----------
many=$CACHE/git-many-v1
if [[ ! -f $many/.done ]]; then
  echo "building 300 repositories in $many ..." >&2
  rm -rf "$many"; mkdir -p "$many/remotes" "$many/home"
  git init -q --bare -b main "$many/remotes/shared.git"
  for i in $(seq -w 1 300); do
    r=$many/home/repo-$i
    mkdir -p "$r/src"
    git -C "$r" init -q -b main
    for f in $(seq 1 20); do echo "file $f of $i" > "$r/src/f$f.txt"; done
    git -C "$r" add -A && git -C "$r" commit -q -m "init $i"
    git -C "$r" remote add origin "$many/remotes/shared.git"
    git -C "$r" push -q origin "main:refs/heads/r$i" && git -C "$r" branch -q -u "origin/r$i"
    case $((10#$i % 5)) in
      1) echo dirty >> "$r/src/f1.txt" ;;                         # modified
      2) echo new > "$r/untracked.txt" ;;                          # untracked
      3) echo ahead > "$r/src/f2.txt"; git -C "$r" commit -qam ahead ;;   # ahead of upstream
      4) echo wip >> "$r/src/f3.txt"; git -C "$r" stash -q ;;      # stash
      *) ;;                                                        # clean and pushed
    esac
  done
  touch "$many/.done"
fi

big=$CACHE/git-big-v1
if [[ ! -f $big/.done ]]; then
  echo "building a repository with 50,000 tracked and 2,000 untracked files in $big ..." >&2
  rm -rf "$big"; mkdir -p "$big/repo"
  git -C "$big/repo" init -q -b main
  python3 - "$big/repo" <<'PY'
import os, sys
root = sys.argv[1]
for d in range(500):
    path = os.path.join(root, "src", f"d{d:03}")
    os.makedirs(path, exist_ok=True)
    for f in range(100):
        with open(os.path.join(path, f"f{f:03}.txt"), "w") as out:
            out.write(f"{d}/{f}\n")
for d in range(20):
    path = os.path.join(root, "scratch", f"u{d:02}")
    os.makedirs(path, exist_ok=True)
    for f in range(100):
        with open(os.path.join(path, f"n{f:03}.txt"), "w") as out:
            out.write("untracked\n")
PY
  git -C "$big/repo" add src && git -C "$big/repo" commit -q -m big
  git -C "$big/repo" status --porcelain >/dev/null   # refresh the index once, as a used checkout has
  touch "$big/.done"
fi

# ---------- measurements ----------
seconds() { # median wall seconds of RUNS runs of "$@"
  local times=() t0 t1
  for _ in $(seq "$RUNS"); do
    t0=$(date +%s%N); "$@" >/dev/null 2>&1 || true; t1=$(date +%s%N)
    times+=("$(( (t1 - t0) / 1000 ))")
  done
  printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {printf "%.3f", a[int((NR+1)/2)]/1e6}'
}
peak_mib() { { /usr/bin/time -f %M "$@" 2>&1 >/dev/null || true; } | tail -1 | awk '{printf "%.1f", $1/1024}'; }

# The shell loop an operator would write: for every repository, the same facts repave reports.
git_loop() {
  local root=$1 r
  find "$root" -name .git -prune -print | while read -r g; do
    r=${g%/.git}
    git -C "$r" status --porcelain=v2 --branch
    git -C "$r" stash list
    git -C "$r" rev-list --count --branches HEAD --not --remotes
    git -C "$r" for-each-ref --format='%(refname:short) %(upstream:short) %(upstream:track)' refs/heads
  done
}
git_one() {
  git -C "$1" status --porcelain=v2 --branch
  git -C "$1" stash list
  git -C "$1" rev-list --count --branches HEAD --not --remotes
}
export -f git_loop git_one

row() { printf '%-44s %14s %14s %8s\n' "$@"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fx", a / b }'; }
at_most() { awk -v a="$1" -v b="$2" 'BEGIN { print (a <= b) ? "met" : "NOT met" }'; }
# One line of bench/run's summary: case, repave, alternative, ratio, target, verdict.
summary() { [[ -z ${BENCH_SUMMARY:-} ]] || { local IFS=$'\t'; echo "$*" >> "$BENCH_SUMMARY"; }; }

echo "case: git preflight (median of $RUNS runs, wall seconds)"
row "" "repave" "git CLI" "ratio"
a_repave=$(seconds "$REPAVE" git-check "$many/home" -o json)
a_git=$(seconds bash -c "git_loop '$many/home'")
row "(a) 300 small repositories, mixed states" "$a_repave" "$a_git" "$(ratio "$a_repave" "$a_git")"
b_repave=$(seconds "$REPAVE" git-check "$big/repo" -o json)
b_git=$(seconds bash -c "git_one '$big/repo'")
row "(b) 50,000 tracked + 2,000 untracked files" "$b_repave" "$b_git" "$(ratio "$b_repave" "$b_git")"
b_repave_mem=$(peak_mib "$REPAVE" git-check "$big/repo" -o json)
b_git_mem=$(peak_mib git -C "$big/repo" status --porcelain=v2 --branch)
row "(b) peak RSS, MiB" "$b_repave_mem" "$b_git_mem" ""
echo "targets: (a) <= 0.30x, (b) <= 1.5x and <= 64 MiB"
a_ratio=$(ratio "$a_repave" "$a_git") b_ratio=$(ratio "$b_repave" "$b_git")
summary "git preflight: 300 small repositories" "$a_repave s" "$a_git s" "$a_ratio" "<= 0.3x" "$(at_most "${a_ratio%x}" 0.3)"
summary "git preflight: 50,000 tracked files" "$b_repave s" "$b_git s" "$b_ratio" "<= 1.5x" "$(at_most "${b_ratio%x}" 1.5)"
summary "git preflight: 50,000 files, peak RSS" "$b_repave_mem MiB" "$b_git_mem MiB" "$(ratio "$b_repave_mem" "$b_git_mem")" "<= 64 MiB" "$(at_most "$b_repave_mem" 64)"
