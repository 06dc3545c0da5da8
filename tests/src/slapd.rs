//! A real OpenLDAP server for the directory-login tests: `slapd` started as a child process on
//! a free loopback port, with a throw-away database loaded by `slapadd` from a small directory
//! — people alice (operators), bob (admins), carol (no mapped group) under
//! `ou=people,dc=example,dc=org`, groups under `ou=groups` — killed on drop.

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const SLAPD: &str = "/usr/sbin/slapd";
pub const SLAPADD: &str = "/usr/sbin/slapadd";
pub const SUFFIX: &str = "dc=example,dc=org";
pub const ADMIN_DN: &str = "cn=admin,dc=example,dc=org";
pub const ADMIN_PASSWORD: &str = "directory-admin-pw";

/// (uid, password) of the test people.
pub const ALICE: (&str, &str) = ("alice", "alice-pw-1");
pub const BOB: (&str, &str) = ("bob", "bob-pw-2");
pub const CAROL: (&str, &str) = ("carol", "carol-pw-3");

const LDIF: &str = "\
dn: dc=example,dc=org
objectClass: dcObject
objectClass: organization
o: Example
dc: example

dn: ou=people,dc=example,dc=org
objectClass: organizationalUnit
ou: people

dn: ou=groups,dc=example,dc=org
objectClass: organizationalUnit
ou: groups

dn: uid=alice,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: alice
cn: Alice Operator
sn: Operator
mail: alice@example.org
userPassword: alice-pw-1

dn: uid=bob,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: bob
cn: Bob Admin
sn: Admin
userPassword: bob-pw-2

dn: uid=carol,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: carol
cn: Carol Nobody
sn: Nobody
userPassword: carol-pw-3

dn: cn=noc-operators,ou=groups,dc=example,dc=org
objectClass: groupOfNames
cn: noc-operators
member: uid=alice,ou=people,dc=example,dc=org

dn: cn=noc-admins,ou=groups,dc=example,dc=org
objectClass: groupOfNames
cn: noc-admins
member: uid=bob,ou=people,dc=example,dc=org
member: uid=alice,ou=people,dc=example,dc=org

dn: cn=interns,ou=groups,dc=example,dc=org
objectClass: groupOfNames
cn: interns
member: uid=carol,ou=people,dc=example,dc=org
";

/// A running slapd, killed on drop.
pub struct Slapd {
    _dir: tempfile::TempDir,
    port: u16,
    child: Child,
}

impl Slapd {
    pub fn start() -> Slapd {
        for tool in [SLAPD, SLAPADD] {
            assert!(
                Path::new(tool).exists(),
                "{tool} is missing: apt-get install slapd ldap-utils (.ci/run installs them)"
            );
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        let conf = dir.path().join("slapd.conf");
        std::fs::write(
            &conf,
            format!(
                "include /etc/ldap/schema/core.schema\n\
                 include /etc/ldap/schema/cosine.schema\n\
                 include /etc/ldap/schema/inetorgperson.schema\n\
                 pidfile {pid}\n\
                 modulepath /usr/lib/ldap\n\
                 moduleload back_mdb\n\
                 database mdb\n\
                 maxsize 10485760\n\
                 suffix \"{SUFFIX}\"\n\
                 rootdn \"{ADMIN_DN}\"\n\
                 rootpw {ADMIN_PASSWORD}\n\
                 directory {data}\n\
                 access to attrs=userPassword by anonymous auth by * none\n\
                 access to * by * read\n",
                pid = dir.path().join("slapd.pid").display(),
                data = data.display(),
            ),
        )
        .unwrap();
        let ldif = dir.path().join("data.ldif");
        std::fs::write(&ldif, LDIF).unwrap();
        let out = Command::new(SLAPADD)
            .arg("-f")
            .arg(&conf)
            .arg("-l")
            .arg(&ldif)
            .output()
            .expect("slapadd runs");
        assert!(
            out.status.success(),
            "slapadd failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = crate::sshd::free_port();
        // `-d 0`: stay in the foreground (no daemonising), log nothing.
        let child = Command::new(SLAPD)
            .arg("-f")
            .arg(&conf)
            .arg("-h")
            .arg(format!("ldap://127.0.0.1:{port}/"))
            .arg("-d")
            .arg("0")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("slapd starts");
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "slapd did not listen on {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        Slapd {
            _dir: dir,
            port,
            child,
        }
    }

    pub fn url(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.port)
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
