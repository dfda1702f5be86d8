<?php
// One login with PHP's mysqlnd through PDO or mysqli, for the mysqlwire lab.
// Usage: php labclient.php pdo|mysqli < spec.json   (one LoginResult JSON line on stdout)
// TLS key log: the LD_PRELOAD OpenSSL shim tests/lab/sslkeylog.c (mysqlnd uses PHP's OpenSSL).
error_reporting(E_ALL & ~E_WARNING & ~E_NOTICE & ~E_DEPRECATED);
$api = $argv[1] ?? 'pdo';
$res = ['client' => "php-$api", 'version' => '', 'connected' => false, 'error' => null,
        'session' => null, 'command_error' => null, 'change_user' => null, 'elapsed' => 0,
        'stderr' => ''];
$client_info = function_exists('mysqli_get_client_info') ? mysqli_get_client_info() : 'mysqlnd';
$res['version'] = ($api === 'pdo' ? 'PHP PDO_mysql' : 'PHP mysqli') . ' ' . PHP_VERSION . " ($client_info)";
$spec = json_decode(file_get_contents('php://stdin'), true);
$opts = $spec['options'] ?? [];

function err_of(Throwable $e, string $api): array {
    $code = null; $state = null;
    if ($e instanceof PDOException) {
        $info = $e->errorInfo;
        if (is_array($info)) { $state = $info[0] ?? null; $code = $info[1] ?? null; }
        if ($code === null && preg_match('/^SQLSTATE\[(\w+)\] \[(\d+)\]/', $e->getMessage(), $m)) {
            $state = $m[1]; $code = (int)$m[2];
        }
    } elseif ($e instanceof mysqli_sql_exception) {
        $code = $e->getCode(); $state = $e->getSqlState();
    }
    return ['cls' => get_class($e), 'message' => $e->getMessage(),
            'code' => ($code && $code > 0) ? (int)$code : null, 'sqlstate' => $state ?: null];
}

function finish(array $res): void { echo json_encode($res), "\n"; exit(0); }

$db = $spec['database'] ?? null;
try {
    if ($api === 'pdo') {
        $dsn = "mysql:host={$spec['host']};port={$spec['port']}" . ($db ? ";dbname=$db" : '');
        $o = [PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION, PDO::ATTR_TIMEOUT => (int)$spec['timeout']];
        if ($spec['tls'] === 'on') {
            $o[PDO::MYSQL_ATTR_SSL_CA] = $spec['ca'];
            $o[PDO::MYSQL_ATTR_SSL_VERIFY_SERVER_CERT] = true;
        }
        foreach ($opts as $k => $v) { $o[constant($k)] = $v; }
        $conn = new PDO($dsn, $spec['user'], $spec['password'], $o);
        $q = function (string $sql) use ($conn) { return $conn->query($sql)->fetchAll(PDO::FETCH_NUM); };
    } else {
        mysqli_report(MYSQLI_REPORT_ERROR | MYSQLI_REPORT_STRICT);
        $conn = mysqli_init();
        $conn->options(MYSQLI_OPT_CONNECT_TIMEOUT, (int)$spec['timeout']);
        $flags = 0;
        if ($spec['tls'] === 'on') {
            $conn->ssl_set(null, null, $spec['ca'], null, null);
            $conn->options(MYSQLI_OPT_SSL_VERIFY_SERVER_CERT, true);
            $flags |= MYSQLI_CLIENT_SSL;
        }
        $conn->real_connect($spec['host'], $spec['user'], $spec['password'], $db, $spec['port'], null, $flags);
        $q = function (string $sql) use ($conn) { return $conn->query($sql)->fetch_all(MYSQLI_NUM); };
    }
} catch (Throwable $e) {
    $res['error'] = err_of($e, $api);
    finish($res);
}
$res['connected'] = true;
try {
    if (!$spec['session_queries']) {
        $q('SELECT 1');
    } else {
        $r = $q('SELECT CURRENT_USER(), DATABASE()');
        $sess = ['current_user' => $r[0][0], 'database' => $r[0][1]];
        foreach ($q("SHOW SESSION STATUS WHERE Variable_name IN ('Ssl_cipher', 'Compression')") as $row) {
            $sess[strtolower($row[0])] = $row[1];
        }
        $res['session'] = $sess;
    }
} catch (Throwable $e) {
    $res['command_error'] = err_of($e, $api);
}
$cu = $spec['change_user'] ?? null;
if ($cu && $api === 'mysqli') {  // COM_CHANGE_USER: mysqli only (PDO has none)
    $out = ['ok' => false, 'error' => null, 'current_user' => null];
    try {
        if (!$conn->change_user($cu['user'], $cu['password'] ?? '', $cu['database'] ?? null)) {
            throw new mysqli_sql_exception($conn->error, $conn->errno);
        }
        $out['ok'] = true;
        $out['current_user'] = $q('SELECT CURRENT_USER()')[0][0];
    } catch (Throwable $e) {
        $out['error'] = err_of($e, $api);
    }
    $res['change_user'] = $out;
}
finish($res);
