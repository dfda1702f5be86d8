// One login with node's `mysql` or `mysql2` (npm, tests/lab/node/) for the mysqlwire lab.
// Usage: node [--tls-keylog=FILE] labclient.js mysql|mysql2  < spec.json
// Reads a LoginSpec as JSON on stdin, prints one LoginResult JSON line on stdout.
// The TLS key log is node's own --tls-keylog (set by tests/lab/extclients.py).
'use strict';
const path = require('path');
const fs = require('fs');

const lib = process.argv[2];
const nodeDir = process.env.MYSQLWIRE_LAB_NODE_DIR || path.join(__dirname, '..', 'node');
const res = {
  client: 'node-' + lib, version: '', connected: false, error: null, session: null,
  command_error: null, change_user: null, elapsed: 0, stderr: '',
};

function done() {
  process.stdout.write(JSON.stringify(res) + '\n');
  process.exit(0);
}

function toErr(e) {
  return {
    cls: e.code || (e.constructor && e.constructor.name) || 'Error',
    message: String(e.message || e),
    code: typeof e.errno === 'number' && e.errno > 0 ? e.errno : null,
    sqlstate: e.sqlState || null,
  };
}

let mod;
try {
  mod = require(path.join(nodeDir, 'node_modules', lib));
  const pkg = JSON.parse(fs.readFileSync(path.join(nodeDir, 'node_modules', lib, 'package.json')));
  res.version = `node ${lib} ${pkg.version} (node ${process.version})`;
} catch (e) {
  res.error = { cls: 'ImportError', message: String(e.message), code: null, sqlstate: null };
  done();
}

const spec = JSON.parse(fs.readFileSync(0, 'utf8'));
const opts = {
  host: spec.host, port: spec.port, user: spec.user, password: spec.password,
  connectTimeout: Math.round(spec.timeout * 1000),
};
if (spec.database) opts.database = spec.database;
if (spec.tls === 'on') {
  opts.ssl = { ca: fs.readFileSync(spec.ca), rejectUnauthorized: true };
}
for (const [k, v] of Object.entries(spec.options || {})) {
  opts[k] = v === 'true' ? true : v === 'false' ? false : v;  // options come as key=value strings
}

function query(conn, sql) {
  return new Promise((resolve, reject) => {
    conn.query(sql, (err, rows) => (err ? reject(err) : resolve(rows)));
  });
}

const conn = mod.createConnection(opts);
conn.on('error', () => {});
conn.connect(async (err) => {
  if (err) {
    res.error = toErr(err);
    try { conn.destroy(); } catch (e) { /* already gone */ }
    return done();
  }
  res.connected = true;
  try {
    if (!spec.session_queries) {
      await query(conn, 'SELECT 1');
    } else {
      const r = await query(conn, 'SELECT CURRENT_USER() AS u, DATABASE() AS d');
      const sess = { current_user: r[0].u, database: r[0].d };
      const st = await query(conn,
        "SHOW SESSION STATUS WHERE Variable_name IN ('Ssl_cipher', 'Compression')");
      for (const row of st) sess[row.Variable_name.toLowerCase()] = row.Value;
      res.session = sess;
    }
  } catch (e) {
    res.command_error = toErr(e);
  }
  conn.end(() => done());
});
