// One login with MariaDB Connector/J (Debian libmariadb-java) for the mysqlwire lab.
// Usage: java -cp /usr/share/java/mariadb-java-client.jar LabClient.java < spec
// The spec is "key=hex(utf-8 value)" lines (no JSON parser in the JDK); one LoginResult JSON
// line on stdout. No TLS key log: JSSE cannot write one without a third-party agent.
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Properties;

public class LabClient {
    static String hex(String h) {
        byte[] b = new byte[h.length() / 2];
        for (int i = 0; i < b.length; i++) {
            b[i] = (byte) Integer.parseInt(h.substring(2 * i, 2 * i + 2), 16);
        }
        return new String(b, StandardCharsets.UTF_8);
    }

    static String q(Object o) {
        if (o == null) return "null";
        if (o instanceof Boolean || o instanceof Integer) return o.toString();
        if (o instanceof Map) {
            StringBuilder sb = new StringBuilder("{");
            for (Map.Entry<?, ?> e : ((Map<?, ?>) o).entrySet()) {
                if (sb.length() > 1) sb.append(",");
                sb.append(q(e.getKey())).append(":").append(q(e.getValue()));
            }
            return sb.append("}").toString();
        }
        StringBuilder sb = new StringBuilder("\"");
        for (char c : o.toString().toCharArray()) {
            if (c == '"' || c == '\\') sb.append('\\').append(c);
            else if (c < 0x20) sb.append(String.format("\\u%04x", (int) c));
            else sb.append(c);
        }
        return sb.append('"').toString();
    }

    static Map<String, Object> err(Throwable e) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("cls", e.getClass().getName());
        m.put("message", String.valueOf(e.getMessage()));
        Integer code = null;
        String state = null;
        if (e instanceof SQLException) {
            int c = ((SQLException) e).getErrorCode();
            code = c > 0 ? c : null;
            state = ((SQLException) e).getSQLState();
        }
        m.put("code", code);
        m.put("sqlstate", state);
        return m;
    }

    public static void main(String[] args) throws Exception {
        Map<String, String> spec = new LinkedHashMap<>();
        Map<String, String> extra = new LinkedHashMap<>();
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        for (String line; (line = in.readLine()) != null; ) {
            int eq = line.indexOf('=');
            if (eq <= 0) continue;
            String k = line.substring(0, eq);
            String v = hex(line.substring(eq + 1));
            if (k.startsWith("option.")) extra.put(k.substring(7), v);
            else spec.put(k, v);
        }
        Map<String, Object> res = new LinkedHashMap<>();
        res.put("client", "connectorj");
        String v;
        try {  // Connector/J 2.x keeps its version here; 3.x: org.mariadb.jdbc.util.VersionFactory
            v = String.valueOf(Class.forName("org.mariadb.jdbc.internal.util.constant.Version")
                    .getField("version").get(null));
        } catch (ReflectiveOperationException e) {
            java.sql.Driver d = new org.mariadb.jdbc.Driver();
            v = d.getMajorVersion() + "." + d.getMinorVersion();
        }
        res.put("version", "MariaDB Connector/J " + (v == null ? "?" : v)
                + " (Java " + System.getProperty("java.version") + ")");
        res.put("connected", false);
        res.put("error", null);
        res.put("session", null);
        res.put("command_error", null);
        String db = spec.getOrDefault("database", "");
        String url = "jdbc:mariadb://" + spec.get("host") + ":" + spec.get("port") + "/" + db;
        Properties props = new Properties();
        props.setProperty("user", spec.get("user"));
        props.setProperty("password", spec.getOrDefault("password", ""));
        props.setProperty("connectTimeout", String.valueOf((int) (Double.parseDouble(spec.get("timeout")) * 1000)));
        if ("on".equals(spec.get("tls"))) {
            props.setProperty("useSsl", "true");
            props.setProperty("serverSslCert", spec.get("ca"));
        }
        props.putAll(extra);
        Connection conn;
        try {
            conn = DriverManager.getConnection(url, props);
        } catch (Throwable e) {
            res.put("error", err(e));
            System.out.println(q(res));
            return;
        }
        res.put("connected", true);
        try (Statement st = conn.createStatement()) {
            if (!"true".equals(spec.get("session_queries"))) {
                st.executeQuery("SELECT 1").close();
            } else {
                Map<String, Object> sess = new LinkedHashMap<>();
                try (ResultSet rs = st.executeQuery("SELECT CURRENT_USER(), DATABASE()")) {
                    rs.next();
                    sess.put("current_user", rs.getString(1));
                    sess.put("database", rs.getString(2));
                }
                try (ResultSet rs = st.executeQuery(
                        "SHOW SESSION STATUS WHERE Variable_name IN ('Ssl_cipher', 'Compression')")) {
                    while (rs.next()) sess.put(rs.getString(1).toLowerCase(), rs.getString(2));
                }
                res.put("session", sess);
            }
        } catch (Throwable e) {
            res.put("command_error", err(e));
        }
        conn.close();
        System.out.println(q(res));
    }
}
