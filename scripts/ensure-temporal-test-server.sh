#!/bin/sh
# Temporal's Java test server (time skipping) for workflow tests: resolves
# io.temporal:temporal-test-server from Maven Central into ~/.cache (once per version) and writes a
# small executable wrapper, which @temporalio/testing starts as an `existing-path` executable
# (arguments: <port> --enable-time-skipping). Prints the wrapper's path.
# Needs java (17+) and mvn; nothing is downloaded at run time once the cache exists.
set -eu
VERSION="${TEMPORAL_TEST_SERVER_VERSION:-1.30.1}"
DIR="${XDG_CACHE_HOME:-$HOME/.cache}/mvno-bss/temporal-test-server-$VERSION"
WRAPPER="$DIR/temporal-test-server"
if [ -x "$WRAPPER" ] && [ -s "$DIR/classpath.txt" ]; then echo "$WRAPPER"; exit 0; fi
command -v java >/dev/null || { echo "ensure-temporal-test-server: java is required" >&2; exit 2; }
command -v mvn >/dev/null || { echo "ensure-temporal-test-server: mvn is required" >&2; exit 2; }
mkdir -p "$DIR"
cat > "$DIR/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.mvno-bss</groupId>
  <artifactId>temporal-test-server-classpath</artifactId>
  <version>1</version>
  <dependencies>
    <dependency><groupId>io.temporal</groupId><artifactId>temporal-test-server</artifactId><version>$VERSION</version></dependency>
  </dependencies>
</project>
POM
(cd "$DIR" && mvn -q -B dependency:build-classpath -Dmdep.outputFile=classpath.txt >&2)
cat > "$WRAPPER" <<SH
#!/bin/sh
exec java -cp "\$(cat "$DIR/classpath.txt")" io.temporal.testserver.TestServer "\$@"
SH
chmod +x "$WRAPPER"
echo "$WRAPPER"
