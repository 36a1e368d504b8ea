/**
 * Every configuration option: its doc, default, format and environment
 * variable. This table is the single source for `--help`-style docs and the
 * configuration table in docs/configuration.md.
 */
export const configSchema = {
  mqtt: {
    host: {
      doc: 'Address the MQTT TCP listener binds to.',
      format: String,
      default: '0.0.0.0',
      env: 'BRIDGE_MQTT_HOST',
    },
    port: {
      doc: 'Port of the MQTT TCP listener (0 picks a free port).',
      format: 'port',
      default: 1883,
      env: 'BRIDGE_MQTT_PORT',
    },
    maxPacketSize: {
      doc: 'Largest MQTT packet accepted from a client, in bytes; larger packets close the connection (MQTT 5: DISCONNECT 0x95).',
      format: 'mqtt-packet-size',
      default: 1_048_576,
      env: 'BRIDGE_MQTT_MAX_PACKET_SIZE',
    },
    maxWriteBuffer: {
      doc: 'Bytes written to a client and not yet taken by it (a slow or stalled subscriber) beyond which its QoS 0 messages are dropped and counted and its QoS 1/2 messages wait in its session queue (mqtt.maxQueuedMessages).',
      format: 'positive-int',
      default: 1_048_576,
      env: 'BRIDGE_MQTT_MAX_WRITE_BUFFER',
    },
    maxQueuedMessages: {
      doc: 'Messages a session keeps for its client while it is offline (persistent sessions) or has its Receive Maximum in flight; further ones are dropped and counted.',
      format: 'positive-int',
      default: 1000,
      env: 'BRIDGE_MQTT_MAX_QUEUED_MESSAGES',
    },
    maxDelayedMessages: {
      doc: 'Messages published to $delay/{seconds}/{topic} that may wait at once (held in memory); further ones are refused (MQTT 5: 0x97).',
      format: 'positive-int',
      default: 10_000,
      env: 'BRIDGE_MQTT_MAX_DELAYED_MESSAGES',
    },
    maxDelayedPerClient: {
      doc: 'Messages one client may have waiting in $delay/ at once (a share of mqtt.maxDelayedMessages, so one client cannot take all of it); further ones are refused (MQTT 5: 0x97).',
      format: 'positive-int',
      default: 1000,
      env: 'BRIDGE_MQTT_MAX_DELAYED_PER_CLIENT',
    },
    maxSubscriptionsPerClient: {
      doc: 'Topic filters one session may hold; a SUBSCRIBE adding more is refused for those filters (SUBACK 0x97 quota exceeded; 3.1.1: 0x80). Replacing an existing one always works.',
      format: 'positive-int',
      default: 1000,
      env: 'BRIDGE_MQTT_MAX_SUBSCRIPTIONS_PER_CLIENT',
    },
    maxTopicLevels: {
      doc: 'Most levels (parts between "/") a topic name or filter may have: a PUBLISH beyond it is refused (MQTT 5: PUBACK 0x90; 3.1.1: acknowledged and dropped), a filter too (SUBACK 0x8F / 0x80), a will refuses the CONNECT.',
      format: 'uint16-positive',
      default: 128,
      env: 'BRIDGE_MQTT_MAX_TOPIC_LEVELS',
    },
    maxTopicLength: {
      doc: 'Longest topic name or filter in bytes (UTF-8), refused beyond it as mqtt.maxTopicLevels says.',
      format: 'uint16-positive',
      default: 4096,
      env: 'BRIDGE_MQTT_MAX_TOPIC_LENGTH',
    },
    maxPublishRate: {
      doc: 'PUBLISH packets per second one connection may send (a bucket holding one second of them): beyond it an MQTT 5 client gets DISCONNECT 0x96 (message rate too high) and an MQTT 3.1/3.1.1 connection is no longer read until the rate allows (TCP slows the client, nothing is lost). 0: no limit.',
      format: 'nat',
      default: 10_000,
      env: 'BRIDGE_MQTT_MAX_PUBLISH_RATE',
    },
    maxKeepAlive: {
      doc: 'Longest keep alive in seconds; an MQTT 5 client asking for more, or for none, is told this one (Server Keep Alive). 0: accept what clients ask.',
      format: 'uint16',
      default: 0,
      env: 'BRIDGE_MQTT_MAX_KEEP_ALIVE',
    },
    receiveMaximum: {
      doc: 'Unacknowledged QoS 1/2 publishes a client may have in flight to the bridge (advertised to MQTT 5 clients, who get DISCONNECT 0x93 beyond it; 3.1.1 connections are no longer read beyond it).',
      format: 'uint16-positive',
      default: 1024,
      env: 'BRIDGE_MQTT_RECEIVE_MAXIMUM',
    },
    maxInflight: {
      doc: "QoS 1/2 messages sent to a client and not yet acknowledged, at most (the smaller of it and an MQTT 5 client's Receive Maximum); further ones wait in its session. Bounds what a client that never acknowledges holds.",
      format: 'uint16-positive',
      default: 32,
      env: 'BRIDGE_MQTT_MAX_INFLIGHT',
    },
    maxSessionExpiry: {
      doc: 'Longest time in seconds a session outlives its connection: an MQTT 5 Session Expiry Interval beyond it is lowered (and CONNACK says so); a 3.1.1 persistent session (clean session 0, which MQTT lets live for ever) ends this long after its client left. Default 2 hours, as EMQX. 0: no limit.',
      format: 'uint32',
      default: 7200,
      env: 'BRIDGE_MQTT_MAX_SESSION_EXPIRY',
    },
    responseTopicPrefix: {
      doc: 'Response Information for MQTT 5 clients that request it: this prefix followed by the client id (e.g. responses/dev1), the base of their response topics. Empty: none.',
      format: String,
      default: 'responses/',
      env: 'BRIDGE_MQTT_RESPONSE_TOPIC_PREFIX',
    },
    serverReference: {
      doc: 'Where MQTT 5 clients should reconnect while this bridge shuts down: sent as Server Reference with DISCONNECT 0x9C (use another server) instead of 0x8B. Empty: none.',
      format: String,
      default: '',
      env: 'BRIDGE_MQTT_SERVER_REFERENCE',
    },
    redirect: {
      doc: 'Refuse every CONNECT and send clients to mqtt.serverReference (which must be set): MQTT 5 clients get CONNACK 0x9C (use-another-server) or 0x9D (server-moved) with the Server Reference, MQTT 3.1.1 clients 0x03 (server unavailable). none: serve clients.',
      format: ['none', 'use-another-server', 'server-moved'],
      default: 'none',
      env: 'BRIDGE_MQTT_REDIRECT',
    },
    connectTimeoutMs: {
      doc: 'Time a new connection has to send CONNECT and finish authenticating (password check or AUTH exchange) before it is closed; also the limit of a re-authentication.',
      format: 'positive-int',
      default: 10_000,
      env: 'BRIDGE_MQTT_CONNECT_TIMEOUT_MS',
    },
    maxConnections: {
      doc: "MQTT connections open at once over all listeners, from the socket's accept (awaiting CONNECT included; about 10 KB of memory each); beyond it CONNACK 0x89 Server busy (3.1.1: 0x03). Per process: each worker of start --workers N counts its own.",
      format: 'positive-int',
      default: 100_000,
      env: 'BRIDGE_MQTT_MAX_CONNECTIONS',
    },
    maxConnectionsPerAddress: {
      doc: 'MQTT connections open at once from one address (IPv4, or IPv6 /64); beyond it CONNACK 0x97 Quota exceeded (3.1.1: 0x03). 0: no limit, needed behind a load balancer without PROXY protocol (every client then has its address).',
      format: 'nat',
      default: 1000,
      env: 'BRIDGE_MQTT_MAX_CONNECTIONS_PER_ADDRESS',
    },
    maxConnectRate: {
      doc: "New MQTT connections a second from one address (IPv4, or IPv6 /64), in bursts of one second's worth; beyond it CONNACK 0x9F Connection rate exceeded (3.1.1: 0x03). 0: no limit, needed behind a load balancer without PROXY protocol.",
      format: 'nat',
      default: 200,
      env: 'BRIDGE_MQTT_MAX_CONNECT_RATE',
    },
  },
  mqtts: {
    enabled: {
      doc: 'Whether to run the MQTT over TLS listener (needs tls.certFile and tls.keyFile).',
      format: Boolean,
      default: false,
      env: 'BRIDGE_MQTTS_ENABLED',
    },
    host: {
      doc: 'Address the MQTT over TLS listener binds to.',
      format: String,
      default: '0.0.0.0',
      env: 'BRIDGE_MQTTS_HOST',
    },
    port: {
      doc: 'Port of the MQTT over TLS listener (0 picks a free port).',
      format: 'port',
      default: 8883,
      env: 'BRIDGE_MQTTS_PORT',
    },
  },
  wss: {
    enabled: {
      doc: 'Whether to run the MQTT over secure WebSocket listener (path websocket.path; needs tls.certFile and tls.keyFile).',
      format: Boolean,
      default: false,
      env: 'BRIDGE_WSS_ENABLED',
    },
    host: {
      doc: 'Address the MQTT secure WebSocket listener binds to.',
      format: String,
      default: '0.0.0.0',
      env: 'BRIDGE_WSS_HOST',
    },
    port: {
      doc: 'Port of the MQTT secure WebSocket listener (0 picks a free port).',
      format: 'port',
      default: 8084,
      env: 'BRIDGE_WSS_PORT',
    },
  },
  tls: {
    certFile: {
      doc: 'PEM certificate chain of the TLS and secure WebSocket listeners.',
      format: String,
      default: '',
      env: 'BRIDGE_TLS_CERT_FILE',
    },
    keyFile: {
      doc: 'PEM private key of that certificate.',
      format: String,
      default: '',
      env: 'BRIDGE_TLS_KEY_FILE',
    },
    caFile: {
      doc: 'PEM certificates of the CAs client certificates are checked against. Empty: the system CAs.',
      format: String,
      default: '',
      env: 'BRIDGE_TLS_CA_FILE',
    },
    requireClientCert: {
      doc: 'Whether TLS clients must present a certificate signed by tls.caFile (mutual TLS).',
      format: Boolean,
      default: false,
      env: 'BRIDGE_TLS_REQUIRE_CLIENT_CERT',
    },
    identity: {
      doc: 'A verified client certificate as the user name for the ACL: none, cn (subject Common Name) or san (first Subject Alternative Name). Such a client needs no password; needs tls.caFile.',
      format: ['none', 'cn', 'san'],
      default: 'none',
      env: 'BRIDGE_TLS_IDENTITY',
    },
  },
  websocket: {
    enabled: {
      doc: 'Whether to run the MQTT over WebSocket listener.',
      format: Boolean,
      default: true,
      env: 'BRIDGE_WEBSOCKET_ENABLED',
    },
    host: {
      doc: 'Address the MQTT WebSocket listener binds to.',
      format: String,
      default: '0.0.0.0',
      env: 'BRIDGE_WEBSOCKET_HOST',
    },
    port: {
      doc: 'Port of the MQTT WebSocket listener (0 picks a free port).',
      format: 'port',
      default: 8083,
      env: 'BRIDGE_WEBSOCKET_PORT',
    },
    path: {
      doc: 'URL path of the MQTT WebSocket listener (subprotocol mqtt); other paths get 404.',
      format: (value: unknown) => {
        if (typeof value !== 'string' || !value.startsWith('/')) {
          throw new Error('must be a URL path starting with /');
        }
      },
      default: '/mqtt',
      env: 'BRIDGE_WEBSOCKET_PATH',
    },
  },
  kafka: {
    brokers: {
      doc: 'Kafka bootstrap servers, comma-separated host:port.',
      format: 'broker-list',
      default: ['127.0.0.1:9092'],
      env: 'BRIDGE_KAFKA_BROKERS',
    },
    clientId: {
      doc: 'Kafka client id of the bridge.',
      format: String,
      default: 'mqtt-kafka-bridge',
      env: 'BRIDGE_KAFKA_CLIENT_ID',
    },
    lingerMs: {
      doc: 'After a produce response, how long the next request waits (counted from the response) to fill its batches: under load, fewer and larger requests cost Kafka and the bridge less CPU per record. A record that finds no response within this time goes on the next tick, so sparse traffic never waits. 0: always on the next tick.',
      format: 'nat',
      default: 3,
      env: 'BRIDGE_KAFKA_LINGER_MS',
    },
    batchMaxRecords: {
      doc: 'Most records of one partition in one produce request (the ready batches of all partitions share a request).',
      format: 'positive-int',
      default: 10_000,
      env: 'BRIDGE_KAFKA_BATCH_MAX_RECORDS',
    },
    batchMaxBytes: {
      doc: "Most bytes (keys, values, headers) of one partition's records in one produce request; keep it below the broker's message.max.bytes (1 MiB by default). A single larger record is sent alone.",
      format: 'positive-int',
      default: 900_000,
      env: 'BRIDGE_KAFKA_BATCH_MAX_BYTES',
    },
    maxPendingBytes: {
      doc: 'Bytes of record values waiting for Kafka at which the bridge stops reading from publishing connections (TCP backpressure; QoS 0 publishes are dropped and counted meanwhile); it reads again below half.',
      format: 'positive-int',
      default: 67_108_864,
      env: 'BRIDGE_KAFKA_MAX_PENDING_BYTES',
    },
    maxPendingRecords: {
      doc: 'Records waiting for Kafka at which the bridge stops reading from publishing connections, as kafka.maxPendingBytes.',
      format: 'positive-int',
      default: 100_000,
      env: 'BRIDGE_KAFKA_MAX_PENDING_RECORDS',
    },
    ackTimeoutMs: {
      doc: 'A QoS 1/2 publish Kafka has not acknowledged within this long (Kafka unreachable) is refused: MQTT 5 PUBACK/PUBREC 0x97, MQTT 3.1.1 connection closed. 0: wait for ever.',
      format: 'nat',
      default: 60_000,
      env: 'BRIDGE_KAFKA_ACK_TIMEOUT_MS',
    },
    connectTimeoutMs: {
      doc: 'How long start-up waits for Kafka before giving up.',
      format: 'positive-int',
      default: 30_000,
      env: 'BRIDGE_KAFKA_CONNECT_TIMEOUT_MS',
    },
    compression: {
      doc: 'Compression of produced record batches: none, gzip, snappy, lz4 or zstd (consumers need the same codec; all of them are built in).',
      format: ['none', 'gzip', 'snappy', 'lz4', 'zstd'],
      default: 'none',
      env: 'BRIDGE_KAFKA_COMPRESSION',
    },
    createTopics: {
      doc: 'At start (and on reload), create the Kafka topics that rules name with a fixed `to.topic`, and the dead-letter topics, when they are missing (for development). The bridge never lets Kafka auto-create a topic: a record for a missing topic takes the dead-letter path.',
      format: Boolean,
      default: false,
      env: 'BRIDGE_KAFKA_CREATE_TOPICS',
    },
    createTopicsPartitions: {
      doc: "Partitions of a topic created by kafka.createTopics (0: the broker's num.partitions).",
      format: 'nat',
      default: 0,
      env: 'BRIDGE_KAFKA_CREATE_TOPICS_PARTITIONS',
    },
    createTopicsReplicationFactor: {
      doc: "Replication factor of a topic created by kafka.createTopics (0: the broker's default.replication.factor).",
      format: 'nat',
      default: 0,
      env: 'BRIDGE_KAFKA_CREATE_TOPICS_REPLICATION_FACTOR',
    },
    ssl: {
      enabled: {
        doc: 'Connect to Kafka over TLS (every connection: producer, consumers, admin, readiness probe).',
        format: Boolean,
        default: false,
        env: 'BRIDGE_KAFKA_SSL_ENABLED',
      },
      caFile: {
        doc: "PEM file of the certificate authorities that sign the brokers' certificates. Empty: the system's trusted authorities.",
        format: String,
        default: '',
        env: 'BRIDGE_KAFKA_SSL_CA_FILE',
      },
      certFile: {
        doc: 'PEM certificate of the bridge for mutual TLS (with kafka.ssl.keyFile). Empty: no client certificate.',
        format: String,
        default: '',
        env: 'BRIDGE_KAFKA_SSL_CERT_FILE',
      },
      keyFile: {
        doc: 'PEM private key of kafka.ssl.certFile.',
        format: String,
        default: '',
        env: 'BRIDGE_KAFKA_SSL_KEY_FILE',
      },
      rejectUnauthorized: {
        doc: 'Refuse brokers whose certificate is not signed by a trusted authority or does not name the host. Turn off only to try things out.',
        format: Boolean,
        default: true,
        env: 'BRIDGE_KAFKA_SSL_REJECT_UNAUTHORIZED',
      },
    },
    sasl: {
      mechanism: {
        doc: 'SASL authentication towards Kafka: none, plain, scram-sha-256, scram-sha-512 or oauthbearer (token from kafka.sasl.oauthTokenFile).',
        format: ['none', 'plain', 'scram-sha-256', 'scram-sha-512', 'oauthbearer'],
        default: 'none',
        env: 'BRIDGE_KAFKA_SASL_MECHANISM',
      },
      username: {
        doc: 'SASL user name (plain, scram-sha-256, scram-sha-512).',
        format: String,
        default: '',
        env: 'BRIDGE_KAFKA_SASL_USERNAME',
      },
      password: {
        doc: 'SASL password; never logged. Prefer kafka.sasl.passwordFile.',
        format: String,
        default: '',
        sensitive: true,
        env: 'BRIDGE_KAFKA_SASL_PASSWORD',
      },
      passwordFile: {
        doc: 'File whose content (trailing newline removed) is the SASL password, e.g. a mounted secret; read at start.',
        format: String,
        default: '',
        env: 'BRIDGE_KAFKA_SASL_PASSWORD_FILE',
      },
      oauthTokenFile: {
        doc: 'File holding the OAuth bearer token (oauthbearer), re-read whenever it changes, so a sidecar can refresh it.',
        format: String,
        default: '',
        env: 'BRIDGE_KAFKA_SASL_OAUTH_TOKEN_FILE',
      },
    },
  },
  downlink: {
    groupId: {
      doc: 'Kafka consumer group of the downlink rules that name none.',
      format: String,
      default: 'mqtt-kafka-bridge-downlink',
      env: 'BRIDGE_DOWNLINK_GROUP_ID',
    },
    instanceId: {
      doc: 'Stable name of this bridge when several serve different devices (see Running several bridges): appended to downlink group ids (<group>.<instanceId>), so each bridge reads every downlink partition. Empty: one group for all.',
      format: String,
      default: '',
      env: 'BRIDGE_DOWNLINK_INSTANCE_ID',
    },
    startDelayMs: {
      doc: 'Time after start, and after taking over a downlink group from a bridge that left it, before the downlink consumes, so that devices can reconnect and subscribe first (commands for sessions that do not exist are dropped).',
      format: 'nat',
      default: 10_000,
      env: 'BRIDGE_DOWNLINK_START_DELAY_MS',
    },
    sessionTimeoutMs: {
      doc: 'How long a bridge that stops heartbeating (killed, hung, cut off from Kafka) keeps its downlink partitions before a standby bridge takes over (Kafka consumer session timeout; the broker accepts 6000 to 1800000 by default).',
      format: 'positive-int',
      default: 30_000,
      env: 'BRIDGE_DOWNLINK_SESSION_TIMEOUT_MS',
    },
    maxUnsettled: {
      doc: 'Downlink records handed to sessions and not yet acknowledged or dropped, at most; beyond, consuming waits (memory bound).',
      format: 'positive-int',
      default: 100_000,
      env: 'BRIDGE_DOWNLINK_MAX_UNSETTLED',
    },
    slowSubscriberWaitMs: {
      doc: 'How long downlink consumption waits for a connected subscriber whose session queue (mqtt.maxQueuedMessages) is full to take a message, instead of dropping what overflows it. A subscriber that takes none for this long is stalled: consumption goes on without it and its messages beyond the queue are dropped and counted (queue-full). 0: never wait.',
      format: 'nat',
      default: 10_000,
      env: 'BRIDGE_DOWNLINK_SLOW_SUBSCRIBER_WAIT_MS',
    },
    commitIntervalMs: {
      doc: 'How often the offsets of settled downlink records are committed.',
      format: 'positive-int',
      default: 1_000,
      env: 'BRIDGE_DOWNLINK_COMMIT_INTERVAL_MS',
    },
  },
  instance: {
    id: {
      doc: "This bridge's name in a fleet: the owner named in the session records it writes (sessions.store kafka). Must differ between bridges sharing Kafka topics and stay the same across restarts. Empty: <host name>-<mqtt.port>, or downlink.instanceId when that is set.",
      format: String,
      default: '',
      env: 'BRIDGE_INSTANCE_ID',
    },
    timeoutMs: {
      doc: 'With sessions.store kafka: a bridge of the fleet not heard of for this long (it writes a heartbeat every quarter of it) is taken as gone, and another bridge adopts its sessions: their wills go out and they expire there.',
      format: 'positive-int',
      default: 20_000,
      env: 'BRIDGE_INSTANCE_TIMEOUT_MS',
    },
  },
  sessions: {
    store: {
      doc: 'Where persistent sessions are kept: memory (lost on restart) or kafka (sessions.topic and sessions.messagesTopic: they survive restarts and crashes, and move between the bridges of a fleet).',
      format: ['memory', 'kafka'],
      default: 'memory',
      env: 'BRIDGE_SESSIONS_STORE',
    },
    topic: {
      doc: 'Kafka topic (compacted; created if missing) holding what each session is: owner, subscriptions, expiry, will, QoS 2 packet ids, delivery position (sessions.store kafka).',
      format: String,
      default: 'mqtt-bridge-sessions',
      env: 'BRIDGE_SESSIONS_TOPIC',
    },
    messagesTopic: {
      doc: 'Kafka topic (cleanup policy delete; created if missing) holding the messages for persistent sessions, keyed by client id: their queues while offline and in flight (sessions.store kafka).',
      format: String,
      default: 'mqtt-bridge-session-messages',
      env: 'BRIDGE_SESSIONS_MESSAGES_TOPIC',
    },
    partitions: {
      doc: 'Partitions of the two session topics when the bridge creates them.',
      format: 'positive-int',
      default: 12,
      env: 'BRIDGE_SESSIONS_PARTITIONS',
    },
    restartGraceMs: {
      doc: 'When a bridge with sessions.store kafka shuts down, how long its clients have to come back (to another bridge, or to it restarted) before their wills go out and their sessions of expiry 0 end: a rolling restart does not fire every will.',
      format: 'nat',
      default: 30_000,
      env: 'BRIDGE_SESSIONS_RESTART_GRACE_MS',
    },
    messagesRetentionMs: {
      doc: 'retention.ms of sessions.messagesTopic when the bridge creates it: how long a message waits for an offline session at most.',
      format: 'positive-int',
      default: 604_800_000,
      env: 'BRIDGE_SESSIONS_MESSAGES_RETENTION_MS',
    },
  },
  retained: {
    topic: {
      doc: 'Kafka topic (compacted; created if missing) that keeps retained messages, so that they survive restarts and are shared by the bridges using it; read to its end at start. Empty: retained messages live in memory only.',
      format: String,
      default: '',
      env: 'BRIDGE_RETAINED_TOPIC',
    },
    maxMessages: {
      doc: 'Retained messages kept at most; a retained publish to a new topic beyond it is refused (MQTT 5: 0x97 Quota exceeded; 3.1.1: acknowledged and dropped) and counted.',
      format: 'positive-int',
      default: 1_000_000,
      env: 'BRIDGE_RETAINED_MAX_MESSAGES',
    },
    maxBytes: {
      doc: 'Topic and payload bytes of all retained messages together, at most; a retained publish beyond it is refused like one beyond retained.maxMessages.',
      format: 'positive-int',
      default: 268_435_456,
      env: 'BRIDGE_RETAINED_MAX_BYTES',
    },
  },
  schemaRegistry: {
    url: {
      doc: "Confluent-compatible schema registry (e.g. http://registry:8081, or Apicurio Registry's /apis/ccompat/v7) for Avro values whose rule names a subject. Empty: no registry.",
      format: String,
      default: '',
      env: 'BRIDGE_SCHEMA_REGISTRY_URL',
    },
    username: {
      doc: 'User name for HTTP basic authentication at the schema registry.',
      format: String,
      default: '',
      env: 'BRIDGE_SCHEMA_REGISTRY_USERNAME',
    },
    password: {
      doc: 'Password for HTTP basic authentication at the schema registry; never logged.',
      format: String,
      default: '',
      sensitive: true,
      env: 'BRIDGE_SCHEMA_REGISTRY_PASSWORD',
    },
    passwordFile: {
      doc: 'File whose content (trailing newline removed) is the schema registry password; read at start.',
      format: String,
      default: '',
      env: 'BRIDGE_SCHEMA_REGISTRY_PASSWORD_FILE',
    },
    caFile: {
      doc: "PEM file of the certificate authorities that sign an https registry's certificate. Empty: the system's trusted authorities.",
      format: String,
      default: '',
      env: 'BRIDGE_SCHEMA_REGISTRY_CA_FILE',
    },
    certFile: {
      doc: 'PEM client certificate for mutual TLS with the registry (with schemaRegistry.keyFile).',
      format: String,
      default: '',
      env: 'BRIDGE_SCHEMA_REGISTRY_CERT_FILE',
    },
    keyFile: {
      doc: 'PEM private key of schemaRegistry.certFile.',
      format: String,
      default: '',
      env: 'BRIDGE_SCHEMA_REGISTRY_KEY_FILE',
    },
    rejectUnauthorized: {
      doc: 'Refuse an https registry whose certificate is not trusted.',
      format: Boolean,
      default: true,
      env: 'BRIDGE_SCHEMA_REGISTRY_REJECT_UNAUTHORIZED',
    },
  },
  mappings: {
    doc: 'Mapping rules: a YAML file, or a folder whose *.yaml / *.yml files are loaded in name order.',
    format: String,
    default: 'mappings',
    env: 'BRIDGE_MAPPINGS',
  },
  mappingsWatch: {
    doc: 'Reload the mapping rules when their files change (SIGHUP always reloads them); an invalid new version is refused and the old one keeps running.',
    format: Boolean,
    default: true,
    env: 'BRIDGE_MAPPINGS_WATCH',
  },
  auth: {
    file: {
      doc: 'Users and ACLs: a YAML file (see Authentication and ACLs). Empty: no users; only clients connecting from this machine (loopback addresses) are accepted, unless auth.allowAnonymous.',
      format: String,
      default: '',
      env: 'BRIDGE_AUTH_FILE',
    },
    allowAnonymous: {
      doc: 'Without auth.file, accept clients from anywhere, with every right (logged as a warning at start). Off: only clients connecting from loopback addresses; others get CONNACK 0x87 / 0x05.',
      format: Boolean,
      default: false,
      env: 'BRIDGE_AUTH_ALLOW_ANONYMOUS',
    },
    failureDelayMaxMs: {
      doc: 'Longest wait imposed on CONNECTs from an address with repeated failed authentications (after 3 failures: 500 ms, doubling); 0 turns the waits off (failures are still logged once a minute per address).',
      format: 'nat',
      default: 8_000,
      env: 'BRIDGE_AUTH_FAILURE_DELAY_MAX_MS',
    },
  },
  sys: {
    interval: {
      doc: 'Seconds between updates of the broker statistics published as retained messages under $SYS/ (the topics Mosquitto publishes, and $SYS/bridge/ for Kafka and the downlink; see docs/operations.md); only clients the ACL lets read them get them. 0: none are published.',
      format: 'nat',
      default: 10,
      env: 'BRIDGE_SYS_INTERVAL',
    },
  },
  http: {
    host: {
      doc: 'Address of the HTTP server for /health/live, /health/ready and /metrics (loopback by default; 0.0.0.0 to serve probes and scrapes from other hosts).',
      format: String,
      default: '127.0.0.1',
      env: 'BRIDGE_HTTP_HOST',
    },
    port: {
      doc: 'Port of the HTTP server for health and metrics (0 picks a free port).',
      format: 'port',
      default: 9080,
      env: 'BRIDGE_HTTP_PORT',
    },
  },
  admin: {
    token: {
      doc: 'Bearer token of the admin HTTP API under /api/ on the HTTP server (docs/admin-api.md); never logged nor shown. Empty, with admin.tokenFile empty too: the API is off.',
      format: String,
      default: '',
      sensitive: true,
      env: 'BRIDGE_ADMIN_TOKEN',
    },
    tokenFile: {
      doc: 'File whose content (trailing newline removed) is the admin API token, e.g. a mounted secret; read at start. Not together with admin.token.',
      format: String,
      default: '',
      env: 'BRIDGE_ADMIN_TOKEN_FILE',
    },
  },
  log: {
    level: {
      doc: 'Log level: fatal, error, warn, info, debug, trace or silent.',
      format: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'],
      default: 'info',
      env: 'BRIDGE_LOG_LEVEL',
    },
    pretty: {
      doc: 'Human-readable logs instead of JSON lines.',
      format: Boolean,
      default: false,
      env: 'BRIDGE_LOG_PRETTY',
    },
  },
  shutdownGraceMs: {
    doc: 'On SIGTERM/SIGINT, how long to wait for in-flight Kafka acknowledgements before closing.',
    format: 'positive-int',
    default: 10_000,
    env: 'BRIDGE_SHUTDOWN_GRACE_MS',
  },
} as const;
