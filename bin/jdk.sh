# Sourced by jtune's scripts: finds a JDK 25 or newer and exports JAVA_HOME to it, or stops with one
# sentence saying what to install. Order: $JAVA_HOME if it qualifies, then the usual install folders
# (the newest qualifying JDK wins).

jtune_jdk_feature() {
    # Prints the feature version (25 for "25.0.3") of the JDK at $1, or nothing if it is not a full JDK.
    [ -x "$1/bin/java" ] && [ -x "$1/bin/javac" ] || return 0
    local v=""
    if [ -f "$1/release" ]; then
        v=$(sed -n 's/^JAVA_VERSION="\([0-9]*\).*/\1/p' "$1/release" | head -n 1)
    fi
    if [ -z "$v" ]; then
        v=$("$1/bin/java" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = \([0-9]*\).*/\1/p' | head -n 1)
    fi
    echo "$v"
}

jtune_find_jdk() {
    local min=25 best="" best_v=0 c v
    if [ -n "${JAVA_HOME:-}" ]; then
        v=$(jtune_jdk_feature "$JAVA_HOME")
        if [ -n "$v" ] && [ "$v" -ge "$min" ]; then
            echo "$JAVA_HOME"
            return 0
        fi
    fi
    for c in /usr/lib/jvm/* /usr/local/lib/jvm/* /usr/java/* /opt/java/* /opt/jdk* /opt/*/jdk* \
             "$HOME"/.sdkman/candidates/java/* "$HOME"/.jdks/* /Library/Java/JavaVirtualMachines/*/Contents/Home; do
        [ -d "$c" ] || continue
        v=$(jtune_jdk_feature "$c")
        if [ -n "$v" ] && [ "$v" -ge "$min" ] && [ "$v" -gt "$best_v" ]; then
            best="$c"
            best_v="$v"
        fi
    done
    if [ -n "$best" ]; then echo "$best"; fi
}

JTUNE_JDK=$(jtune_find_jdk)
if [ -z "$JTUNE_JDK" ]; then
    echo "jtune: no JDK 25 or newer found (JAVA_HOME=${JAVA_HOME:-unset}, /usr/lib/jvm and the usual folders searched); install one, for example 'apt-get install temurin-25-jdk' from Adoptium or a JDK 25 tarball from https://adoptium.net, then set JAVA_HOME to it." >&2
    exit 3
fi
export JAVA_HOME="$JTUNE_JDK"
unset JTUNE_JDK
