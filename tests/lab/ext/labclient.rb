# One login with Ruby's mysql2 gem (Debian ruby-mysql2, on libmariadb) for the mysqlwire lab.
# Usage: ruby labclient.rb < spec.json   (one LoginResult JSON line on stdout)
# TLS key log: the LD_PRELOAD OpenSSL shim tests/lab/sslkeylog.c.
require 'json'

res = { client: 'ruby-mysql2', version: '', connected: false, error: nil, session: nil,
        command_error: nil, change_user: nil, elapsed: 0, stderr: '' }
finish = lambda { puts JSON.generate(res); exit 0 }
spec = JSON.parse($stdin.read)
begin
  require 'mysql2'
  res[:version] = "Ruby mysql2 #{Mysql2::VERSION} (#{Mysql2::Client.info[:version]})"
rescue LoadError => e
  res[:error] = { cls: 'LoadError', message: e.message, code: nil, sqlstate: nil }
  finish.call
end

def err_of(e)
  code = e.respond_to?(:error_number) ? e.error_number : nil
  st = e.respond_to?(:sql_state) ? e.sql_state : nil
  { cls: e.class.name, message: e.message, code: (code && code > 0 ? code : nil),
    sqlstate: (st && !st.empty? ? st : nil) }
end

opts = { host: spec['host'], port: spec['port'], username: spec['user'],
         password: spec['password'], connect_timeout: spec['timeout'].to_i }
opts[:database] = spec['database'] if spec['database']
if spec['tls'] == 'on'
  opts[:sslca] = spec['ca']
  opts[:sslverify] = true
end
(spec['options'] || {}).each { |k, v| opts[k.to_sym] = v }
begin
  conn = Mysql2::Client.new(opts)
rescue StandardError => e
  res[:error] = err_of(e)
  finish.call
end
res[:connected] = true
begin
  if spec['session_queries']
    r = conn.query('SELECT CURRENT_USER(), DATABASE()', as: :array).to_a
    sess = { current_user: r[0][0], database: r[0][1] }
    conn.query("SHOW SESSION STATUS WHERE Variable_name IN ('Ssl_cipher', 'Compression')",
               as: :array).each { |row| sess[row[0].downcase] = row[1] }
    res[:session] = sess
  else
    conn.query('SELECT 1').to_a
  end
rescue StandardError => e
  res[:command_error] = err_of(e)
end
conn.close
finish.call
