//! Who wrote an op: Ed25519 keys, server certificates and hash-chained proofs, and the
//! [`Ledger`] that admits a peer's ops into the document only when their author's signature
//! covers them.
//!
//! Why: ops travel through whoever has them (that is how a late joiner gets the work of people
//! who left), so without signatures anyone could write in a departed author's name.
//!
//! The scheme:
//! - Every browser makes an Ed25519 key pair when the page loads. At sign-in the server
//!   certifies it: a [`Certificate`] binds the peer id the server issued to that key, signed with
//!   the server's own key, which `/config` publishes. Any peer checks a certificate itself. Before
//!   sign-in, ops are filed under a *self-certifying* id, `local-<key>` ([`local_author`]).
//! - Each author's ops form a hash chain: `head(0) = H(domain, author)`,
//!   `head(n) = H(head(n-1), canonical bytes of op n)` ([`Chain`]). A [`Proof`] is the author's
//!   signature of `(head(n), n)`: one signature vouches for every op up to `n`, so a late joiner
//!   hashes every op but checks one signature per author per message, not one per op.
//! - An author signs when it broadcasts ([`Ledger::seal_live`]: at most every [`SEAL_EVERY_MS`]
//!   while a stroke grows, and at every other op), and every replica keeps the proofs it has
//!   checked, so it can hand any author's ops on, cut at those proofs ([`Ledger::sync_batches`]).
//! - A peer's own ops are taken without a proof (the data channel is bound to the peer by the
//!   DTLS fingerprint its signaling sent), but a proof it does send must check; ops of a third
//!   author are taken only up to a proof that checks, and wait (within a budget) for one that
//!   comes in a later message: proofs are sent sparingly, since checking one costs a late joiner
//!   about a millisecond in the browser.
//!
//! - An erase or a clear names other authors' ops, and hides them once they arrive: named ahead
//!   of time, sent to everyone but their author, it would hide work that author has yet to do
//!   (the others' clocks move past it; the author's does not). So each carries a [`Mark`] per
//!   author it names, the fingerprint of that author's chain at the latest op named, which nobody
//!   can know before the op exists; the ledger holds it until the chain gets there, and refuses
//!   it unless the mark matches ([`Ledger::mark`] makes them).
//!
//! Canonical bytes are our own small encoding ([`canonical`]), not JSON: the client encodes JSON
//! with the browser's own `JSON.stringify`, whose number printing is not ours to fix.

use crate::document::{
    Changes, Document, Marks, Op, OpError, OpId, OpKind, Seq, Shape, VersionVector,
};
use crate::geometry::Point;
use crate::protocol::PeerId;
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha512};
use std::collections::{BTreeMap, HashMap};
use std::fmt;

/// While a stroke grows, an author signs at most this often (and at its end, and at every op that
/// is not a stroke's growth). What a tab that dies mid-stroke loses for late joiners.
pub const SEAL_EVERY_MS: f64 = 250.0;
/// An author drawing with nobody to send to signs after this many bytes of ops (by estimate),
/// so its proofs are never further apart than a receiver holds unchecked
/// ([`MAX_HELD_BYTES_PER_SENDER`]).
pub const SEAL_EVERY_BYTES: usize = PROOF_SPAN_BYTES / 2;
/// Most ops one sender may have waiting for their author's chain to reach them.
pub const MAX_WAITING_PER_SENDER: usize = 20_000;
/// A sender hands on a third author's ops with a proof at least every this many bytes (by
/// [`Op::estimated_size`]): few proofs to check, few bytes held unchecked.
pub const PROOF_SPAN_BYTES: usize = 2 << 20;
/// Most bytes of a third author's ops one sender may have held, waiting for the proof that
/// covers them.
pub const MAX_HELD_BYTES_PER_SENDER: usize = 4 * PROOF_SPAN_BYTES;
/// Most server keys a replica trusts (one per server secret it has seen).
pub const MAX_SERVER_KEYS: usize = 16;
/// A chain keeps its state every this many ops, so its head at any earlier op costs at most this
/// many ops' hashing ([`Ledger::mark`]); about 3 bytes an op.
pub const CHECKPOINT_EVERY: Seq = 64;
/// Prefix of the self-certifying author ids used before sign-in.
pub const LOCAL_PREFIX: &str = "local-";

const CHAIN_DOMAIN: &[u8] = b"drawmesh chain v1\0";
const PROOF_DOMAIN: &[u8] = b"drawmesh proof v1\0";
const CERT_DOMAIN: &[u8] = b"drawmesh certificate v1\0";

/// An Ed25519 public key, written as 64 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey(pub [u8; 32]);

/// An Ed25519 signature, written as 128 hex digits.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signature(pub [u8; 64]);

/// A chain head: the first half of a SHA-512.
pub type Head = [u8; 32];

/// The fingerprint of an author's chain at one op (the first 16 bytes of its head), written as 32
/// hex digits: an erase or a clear carries one per author it names, to show it had those ops.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Mark(pub [u8; 16]);

impl Mark {
    fn of(head: &Head) -> Mark {
        let mut m = [0; 16];
        m.copy_from_slice(&head[..16]);
        Mark(m)
    }
}

/// A signing key. Its secret never leaves the replica (nor is it stored: a page load is one
/// identity).
pub struct Keypair(SigningKey);

impl Keypair {
    /// The key pair for a 32-byte secret seed (from the platform's random source).
    pub fn from_seed(seed: [u8; 32]) -> Keypair {
        Keypair(SigningKey::from_bytes(&seed))
    }

    /// A key pair derived from a secret and a purpose: the server's certificate key from its
    /// token secret, so every process sharing the secret certifies with the same key.
    pub fn derive(purpose: &[u8], secret: &[u8]) -> Keypair {
        let digest = Sha512::new()
            .chain_update((purpose.len() as u64).to_be_bytes())
            .chain_update(purpose)
            .chain_update(secret)
            .finalize();
        let mut seed = [0; 32];
        seed.copy_from_slice(&digest[..32]);
        Keypair::from_seed(seed)
    }

    /// The public half.
    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key().to_bytes())
    }

    fn sign(&self, message: &[u8]) -> Signature {
        Signature(self.0.sign(message).to_bytes())
    }
}

impl fmt::Debug for Keypair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Keypair({:?})", self.public())
    }
}

impl PublicKey {
    /// True when `signature` is this key's (strict Ed25519: no malleable or small-order forms).
    pub fn verifies(&self, message: &[u8], signature: &Signature) -> bool {
        let Ok(key) = VerifyingKey::from_bytes(&self.0) else {
            return false;
        };
        let signature = ed25519_dalek::Signature::from_bytes(&signature.0);
        key.verify_strict(message, &signature).is_ok()
    }
}

/// The server's word that `peer` signs with `key`. Issued at sign-in; never expires, since a
/// peer id is issued once and its ops outlive the session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Certificate {
    /// The peer id the server issued.
    pub peer: PeerId,
    /// The key the peer's browser made.
    pub key: PublicKey,
    /// The server's signature of the two.
    pub sig: Signature,
}

impl Certificate {
    /// Certifies that `peer` signs with `key` (the server does this).
    pub fn issue(server: &Keypair, peer: PeerId, key: PublicKey) -> Certificate {
        let sig = server.sign(&Certificate::message(&peer, &key));
        Certificate { peer, key, sig }
    }

    /// True when one of `servers` signed it.
    pub fn is_signed_by_one_of(&self, servers: &[PublicKey]) -> bool {
        let message = Certificate::message(&self.peer, &self.key);
        servers.iter().any(|s| s.verifies(&message, &self.sig))
    }

    fn message(peer: &PeerId, key: &PublicKey) -> Vec<u8> {
        let mut m = CERT_DOMAIN.to_vec();
        m.extend_from_slice(&key.0);
        m.extend_from_slice(peer.0.as_bytes());
        m
    }
}

/// An author's signature over its chain up to `seq`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proof {
    /// Whose chain.
    pub author: PeerId,
    /// The last op it covers.
    pub seq: Seq,
    /// The author's signature of the chain head at `seq`.
    pub sig: Signature,
}

fn proof_message(head: &Head, seq: Seq) -> Vec<u8> {
    let mut m = PROOF_DOMAIN.to_vec();
    m.extend_from_slice(head);
    m.extend_from_slice(&seq.to_be_bytes());
    m
}

/// The id ops are filed under before the server names us: it carries its own key.
pub fn local_author(key: &PublicKey) -> PeerId {
    PeerId(format!("{LOCAL_PREFIX}{}", hex(&key.0)))
}

/// The key a self-certifying id carries, if it is one.
pub fn self_certified_key(author: &PeerId) -> Option<PublicKey> {
    let digits = author.0.strip_prefix(LOCAL_PREFIX)?;
    unhex::<32>(digits).map(PublicKey)
}

/// Why ops were not taken.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TrustError {
    /// No certificate (or self-certifying id) says which key signs for the author.
    UnknownAuthor,
    /// A certificate not signed by a server this replica trusts, or naming a peer it already
    /// knows with another key.
    BadCertificate,
    /// A proof whose signature does not check.
    BadProof,
    /// One author's ops not in consecutive seq order.
    NotInOrder,
    /// The sender has too many ops waiting for their chain.
    OverBudget,
    /// An erase or a clear whose marks are missing or do not match the chains of the ops it
    /// names.
    BadMark,
    /// The document refused an op (bounds, budgets).
    Refused(OpError),
}

impl fmt::Display for TrustError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrustError::UnknownAuthor => f.write_str("no certificate for the author"),
            TrustError::BadCertificate => f.write_str("certificate not from a trusted server"),
            TrustError::BadProof => f.write_str("signature does not match the ops"),
            TrustError::NotInOrder => f.write_str("an author's ops out of order"),
            TrustError::OverBudget => f.write_str("too many ops waiting from this sender"),
            TrustError::BadMark => f.write_str("an erase or clear names ops it never had"),
            TrustError::Refused(why) => write!(f, "{why}"),
        }
    }
}

impl std::error::Error for TrustError {}

/// One author's hash chain as far as this replica holds it, and the proofs it has checked.
#[derive(Clone, Debug)]
pub struct Chain {
    seq: Seq,
    stream: Stream,
    /// The stream after every [`CHECKPOINT_EVERY`]-th op: `checkpoints[i]` after op
    /// `i * CHECKPOINT_EVERY` (the first, before any op).
    checkpoints: Vec<Stream>,
    proofs: BTreeMap<Seq, Signature>,
    /// Bytes (by estimate) of my ops since my last proof, for [`Ledger::record_mine`].
    unsealed: usize,
}

impl Chain {
    fn new(author: &PeerId) -> Chain {
        let mut stream = Stream(Sha512::new());
        stream.put(CHAIN_DOMAIN);
        stream.put(author.0.as_bytes());
        Chain {
            seq: 0,
            checkpoints: vec![stream.clone()],
            stream,
            proofs: BTreeMap::new(),
            unsealed: 0,
        }
    }

    /// The highest seq a checked proof covers.
    pub fn proven(&self) -> Seq {
        self.proofs.keys().next_back().copied().unwrap_or(0)
    }

    /// Moves the chain on to `seq`, whose stream is `stream`.
    fn reach(&mut self, seq: Seq, stream: Stream) {
        self.seq = seq;
        self.stream = stream;
        if seq.is_multiple_of(CHECKPOINT_EVERY)
            && self.checkpoints.len() as Seq == seq / CHECKPOINT_EVERY
        {
            self.checkpoints.push(self.stream.clone());
        }
    }

    /// The head at op `seq` (at most the chain's), rehashing from the checkpoint before it the
    /// ops `doc` holds.
    fn head_at(&self, seq: Seq, author: &PeerId, doc: &Document) -> Option<Head> {
        if seq == self.seq {
            return Some(self.stream.head());
        }
        if seq > self.seq {
            return None;
        }
        let from = seq / CHECKPOINT_EVERY;
        let mut stream = self.checkpoints.get(usize::try_from(from).ok()?)?.clone();
        let mut scratch = Vec::new();
        for n in from * CHECKPOINT_EVERY + 1..=seq {
            stream.absorb(doc.op(author, n)?, &mut scratch);
        }
        Some(stream.head())
    }
}

/// What an erase's or a clear's marks say, against the chains here.
enum Named {
    /// Every mark matches.
    Known,
    /// The chain has not reached this op yet.
    Ahead(OpId),
}

/// The chain as one SHA-512 stream over every op's canonical bytes, length-prefixed: an op costs
/// the hashing of its own bytes, and the head at any op is the stream finished there (on a copy).
#[derive(Clone)]
struct Stream(Sha512);

impl Stream {
    fn put(&mut self, part: &[u8]) {
        self.0.update((part.len() as u64).to_be_bytes());
        self.0.update(part);
    }

    fn absorb(&mut self, op: &Op, scratch: &mut Vec<u8>) {
        scratch.clear();
        canonical(op, scratch);
        self.put(scratch);
    }

    fn head(&self) -> Head {
        let mut head = [0; 32];
        head.copy_from_slice(&self.0.clone().finalize()[..32]);
        head
    }
}

impl fmt::Debug for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Stream(..)")
    }
}

/// Ops (all of one sender, one author) waiting for their author's chain to reach them.
#[derive(Debug)]
struct Waiting {
    sender: PeerId,
    ops: Vec<Op>,
    proof: Option<Proof>,
}

/// What [`Ledger::admit`] did.
#[derive(Debug, Default)]
pub struct Admission {
    /// What the document did with the ops taken.
    pub changes: Changes,
    /// Ops not taken, with why (one entry per author group).
    pub refused: Vec<(PeerId, usize, TrustError)>,
}

/// One message's worth of signed ops, for [`ChannelMessage::Ops`](crate::sync::ChannelMessage).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SignedBatch {
    /// The ops, each author's in seq order.
    pub ops: Vec<Op>,
    /// A proof for each author's last op in the batch.
    pub proofs: Vec<Proof>,
    /// The certificates of the batch's authors.
    pub certs: Vec<Certificate>,
}

/// Which keys sign for which authors, each author's chain, and the ops waiting for theirs: the
/// gate between a peer's data and the [`Document`].
#[derive(Debug, Default)]
pub struct Ledger {
    servers: Vec<PublicKey>,
    certs: HashMap<PeerId, Certificate>,
    chains: HashMap<PeerId, Chain>,
    waiting: HashMap<PeerId, Vec<Waiting>>,
    /// Ops from an erase or a clear on, by the author whose chain has to reach the op it names
    /// (and how far) before its mark can be checked.
    blocked: HashMap<PeerId, Vec<(Seq, Waiting)>>,
    waiting_per_sender: HashMap<PeerId, usize>,
    /// A third author's ops, by (author, sender), that wait for the proof that covers them.
    held: HashMap<(PeerId, PeerId), Vec<Op>>,
    held_bytes: HashMap<PeerId, usize>,
    /// When I last sent a proof.
    last_seal: Option<f64>,
}

impl Ledger {
    /// An empty ledger that trusts no server yet.
    pub fn new() -> Ledger {
        Ledger::default()
    }

    /// Trusts certificates signed by `key` (from `/config`). The oldest is forgotten past
    /// [`MAX_SERVER_KEYS`].
    pub fn trust_server(&mut self, key: PublicKey) {
        if self.servers.contains(&key) {
            return;
        }
        if self.servers.len() >= MAX_SERVER_KEYS {
            self.servers.remove(0);
        }
        self.servers.push(key);
    }

    /// The server keys trusted, oldest first (to remember them across reloads).
    pub fn servers(&self) -> &[PublicKey] {
        &self.servers
    }

    /// Takes a certificate after checking it.
    pub fn learn(&mut self, cert: &Certificate) -> Result<(), TrustError> {
        if let Some(known) = self.certs.get(&cert.peer) {
            return if known.key == cert.key {
                Ok(())
            } else {
                Err(TrustError::BadCertificate)
            };
        }
        if !cert.is_signed_by_one_of(&self.servers) {
            return Err(TrustError::BadCertificate);
        }
        self.certs.insert(cert.peer.clone(), cert.clone());
        Ok(())
    }

    /// Takes a certificate from this replica's own storage, where only checked ones are kept.
    pub fn remember(&mut self, cert: Certificate) {
        self.certs.entry(cert.peer.clone()).or_insert(cert);
    }

    /// The certificate for `author`, if known.
    pub fn certificate(&self, author: &PeerId) -> Option<&Certificate> {
        self.certs.get(author)
    }

    /// Every certificate known (to save them).
    pub fn certificates(&self) -> impl Iterator<Item = &Certificate> + '_ {
        self.certs.values()
    }

    /// The key that signs for `author`, if known.
    pub fn key_of(&self, author: &PeerId) -> Option<PublicKey> {
        self.certs
            .get(author)
            .map(|c| c.key)
            .or_else(|| self_certified_key(author))
    }

    /// `author`'s chain, if this replica holds any of it.
    pub fn chain(&self, author: &PeerId) -> Option<&Chain> {
        self.chains.get(author)
    }

    /// Every checked proof (to save them).
    pub fn proofs(&self) -> impl Iterator<Item = Proof> + '_ {
        self.chains.iter().flat_map(|(author, chain)| {
            chain.proofs.iter().map(|(seq, sig)| Proof {
                author: author.clone(),
                seq: *seq,
                sig: *sig,
            })
        })
    }

    /// Ops from this replica's own storage (or made here): integrated into `doc` and chained
    /// without proofs, which storage does not need. `proofs` saved with them are kept so they
    /// can be handed on; a proof that does not match the stored ops is dropped.
    pub fn load(
        &mut self,
        doc: &mut Document,
        ops: impl IntoIterator<Item = Op>,
        proofs: impl IntoIterator<Item = Proof>,
    ) -> Changes {
        let mut by_author: HashMap<PeerId, Vec<(Seq, Signature)>> = HashMap::new();
        for p in proofs {
            by_author.entry(p.author).or_default().push((p.seq, p.sig));
        }
        let mut heads: HashMap<PeerId, BTreeMap<Seq, Head>> = HashMap::new();
        let mut total = Changes::default();
        let mut scratch = Vec::new();
        for op in ops {
            let wanted: Vec<Seq> = by_author
                .get(&op.author)
                .map(|v| v.iter().map(|(s, _)| *s).collect())
                .unwrap_or_default();
            let chain = self
                .chains
                .entry(op.author.clone())
                .or_insert_with(|| Chain::new(&op.author));
            if op.seq != chain.seq + 1 {
                continue;
            }
            let mut next = chain.stream.clone();
            next.absorb(&op, &mut scratch);
            let (author, seq) = (op.author.clone(), op.seq);
            if let Ok(changes) = doc.apply_from(op, None) {
                if wanted.contains(&seq) {
                    heads.entry(author).or_default().insert(seq, next.head());
                }
                chain.reach(seq, next);
                total.merge(changes);
            }
        }
        for (author, sigs) in by_author {
            let (Some(key), Some(heads)) = (self.key_of(&author), heads.get(&author)) else {
                continue;
            };
            let Some(chain) = self.chains.get_mut(&author) else {
                continue;
            };
            for (seq, sig) in sigs {
                if heads
                    .get(&seq)
                    .is_some_and(|head| key.verifies(&proof_message(head, seq), &sig))
                {
                    chain.proofs.insert(seq, sig);
                }
            }
        }
        total
    }

    /// Notes an op I just made (already in the document): my chain moves on, and is signed
    /// after every [`SEAL_EVERY_BYTES`] of ops even with nobody to send them to (drawing
    /// offline), so that whoever gets them later can check them a few megabytes at a time.
    pub fn record_mine(&mut self, op: &Op, key: &Keypair) {
        let chain = self
            .chains
            .entry(op.author.clone())
            .or_insert_with(|| Chain::new(&op.author));
        if op.seq == chain.seq + 1 {
            let mut next = chain.stream.clone();
            next.absorb(op, &mut Vec::new());
            chain.reach(op.seq, next);
            chain.unsealed += op.estimated_size();
            if chain.unsealed >= SEAL_EVERY_BYTES {
                let author = op.author.clone();
                self.seal(key, &author);
            }
        }
    }

    /// `kind` as `author` makes it here: an erase or a clear gets the [`Mark`] of each other
    /// author it names, from the chains here (which hold every op `doc` has).
    pub fn mark(&self, doc: &Document, author: &PeerId, kind: OpKind) -> OpKind {
        let named = kind.names_beyond(author);
        let marks: Marks = named
            .into_iter()
            .filter_map(|(a, seq)| {
                let head = self.chains.get(&a)?.head_at(seq, &a, doc)?;
                Some((a, Mark::of(&head)))
            })
            .collect();
        match kind {
            OpKind::Erase { targets, .. } => OpKind::Erase { targets, marks },
            OpKind::Clear { seen, .. } => OpKind::Clear { seen, marks },
            other => other,
        }
    }

    /// Checks an erase's or a clear's marks: one for each other author it names, matching that
    /// author's chain here at the op named, or that chain not there yet.
    fn check_marks(&self, doc: &Document, op: &Op) -> Result<Named, TrustError> {
        let named = op.op.names_beyond(&op.author);
        let (OpKind::Erase { marks, .. } | OpKind::Clear { marks, .. }) = &op.op else {
            return Ok(Named::Known);
        };
        if marks.len() != named.len() {
            return Err(TrustError::BadMark);
        }
        for (author, seq) in named {
            let mark = marks.get(&author).ok_or(TrustError::BadMark)?;
            let chain = self.chains.get(&author);
            if chain.is_none_or(|c| c.seq < seq) {
                return Ok(Named::Ahead(OpId { author, seq }));
            }
            let head = chain.and_then(|c| c.head_at(seq, &author, doc));
            if head.is_none_or(|head| Mark::of(&head) != *mark) {
                return Err(TrustError::BadMark);
            }
        }
        Ok(Named::Known)
    }

    /// Signs my chain as it stands: the proof to send (and kept, to hand my ops on).
    pub fn seal(&mut self, key: &Keypair, me: &PeerId) -> Option<Proof> {
        let chain = self.chains.get_mut(me)?;
        if chain.seq == 0 {
            return None;
        }
        let sig = key.sign(&proof_message(&chain.stream.head(), chain.seq));
        chain.proofs.insert(chain.seq, sig);
        chain.unsealed = 0;
        Some(Proof {
            author: me.clone(),
            seq: chain.seq,
            sig,
        })
    }

    /// The proof to send with ops I am broadcasting at `now_ms`, when one is due: every op but a
    /// stroke's start and growth is sealed at once (a stroke at its `finish`); growth at most
    /// every [`SEAL_EVERY_MS`].
    pub fn seal_live(
        &mut self,
        key: &Keypair,
        me: &PeerId,
        ops: &[Op],
        now_ms: f64,
    ) -> Option<Proof> {
        let growth_only = ops.iter().all(|op| {
            matches!(
                op.op,
                OpKind::Extend { .. }
                    | OpKind::Add {
                        shape: Shape::Stroke { .. },
                        ..
                    }
            )
        });
        let due = match self.last_seal {
            None => true,
            Some(at) => !growth_only || now_ms - at >= SEAL_EVERY_MS || now_ms < at,
        };
        if !due || ops.is_empty() {
            return None;
        }
        self.last_seal = Some(now_ms);
        self.seal(key, me)
    }

    /// Takes ops `sender` sent, with the proofs and certificates in the same message: certificates
    /// checked, each author's ops chained and their proofs checked, then handed to `doc` (which
    /// bounds them further). Ops whose chain has a gap wait (bounded per sender) until it fills.
    pub fn admit(
        &mut self,
        doc: &mut Document,
        sender: &PeerId,
        ops: Vec<Op>,
        proofs: Vec<Proof>,
        certs: Vec<Certificate>,
    ) -> Admission {
        let mut out = Admission::default();
        let mut groups: Vec<(PeerId, Vec<Op>)> = Vec::new();
        for op in ops {
            match groups.iter_mut().find(|(a, _)| *a == op.author) {
                Some((_, group)) => group.push(op),
                None => groups.push((op.author.clone(), vec![op])),
            }
        }
        for cert in &certs {
            // Only the certificates of authors in this message: nobody grows the map for free.
            if groups.iter().any(|(a, _)| *a == cert.peer) {
                let _ = self.learn(cert);
            }
        }
        for (author, group) in groups {
            let proof = proofs
                .iter()
                .filter(|p| p.author == author)
                .max_by_key(|p| p.seq)
                .cloned();
            self.admit_group(doc, sender, group, proof, &mut out);
        }
        out
    }

    fn admit_group(
        &mut self,
        doc: &mut Document,
        sender: &PeerId,
        ops: Vec<Op>,
        proof: Option<Proof>,
        out: &mut Admission,
    ) {
        let Some(author) = ops.first().map(|op| op.author.clone()) else {
            return;
        };
        let refuse = |out: &mut Admission, count, why| {
            out.refused.push((author.clone(), count, why));
        };
        let Some(key) = self.key_of(&author) else {
            return refuse(out, ops.len(), TrustError::UnknownAuthor);
        };
        let chain = self
            .chains
            .entry(author.clone())
            .or_insert_with(|| Chain::new(&author));
        let (held, stream) = (chain.seq, chain.stream.clone());
        let third = author != *sender;
        // A third author's ops this sender sent before, waiting for a proof, come first, when
        // these continue them (an honest sender's do; anything else replaces them).
        let mut ops = ops;
        if third && let Some(earlier) = self.take_held(&author, sender) {
            let continues = match (earlier.last(), ops.first()) {
                (Some(a), Some(b)) => b.seq == a.seq + 1,
                _ => false,
            };
            if continues {
                ops = earlier.into_iter().chain(ops).collect();
            }
        }
        let count = ops.len();
        ops.retain(|op| op.seq > held);
        let Some(first) = ops.first().map(|op| op.seq) else {
            return; // all held already
        };
        if ops.iter().zip(first..).any(|(op, seq)| op.seq != seq) {
            return refuse(out, count, TrustError::NotInOrder);
        }
        if first != held + 1 {
            let used = self.waiting_per_sender.entry(sender.clone()).or_default();
            if *used + ops.len() > MAX_WAITING_PER_SENDER {
                return refuse(out, count, TrustError::OverBudget);
            }
            *used += ops.len();
            self.waiting.entry(author).or_default().push(Waiting {
                sender: sender.clone(),
                ops,
                proof,
            });
            return;
        }
        let last = first + ops.len() as Seq - 1;
        let proof = proof.filter(|p| (first..=last).contains(&p.seq));
        // A peer's own ops come over a channel bound to it; anyone else's need the author's word,
        // which may come with a later message (see `Ledger::sync_batches`): until then they wait.
        let limit = match (&proof, third) {
            (_, false) => last,
            (Some(p), true) => p.seq,
            (None, true) => held,
        };
        // The chain after each op up to the limit, to check the proof and to stop anywhere.
        let mut scratch = Vec::new();
        let mut streams = Vec::new();
        let mut next = stream;
        for op in ops.iter().take_while(|op| op.seq <= limit) {
            next.absorb(op, &mut scratch);
            streams.push(next.clone());
        }
        if let Some(p) = &proof {
            let head = streams[(p.seq - first) as usize].head();
            if !key.verifies(&proof_message(&head, p.seq), &p.sig) {
                return refuse(out, count, TrustError::BadProof);
            }
        }
        let mut rest = ops.into_iter();
        let mut applied = 0;
        let mut refused = None;
        let mut blocked = None;
        for op in rest.by_ref() {
            if op.seq > limit {
                if third {
                    let waiting: Vec<Op> = std::iter::once(op).chain(rest.by_ref()).collect();
                    if let Err(why) = self.hold(&author, sender, waiting) {
                        refused = Some(why);
                    }
                }
                break;
            }
            match self.check_marks(doc, &op) {
                Ok(Named::Known) => {}
                Ok(Named::Ahead(needs)) => {
                    let from = op.seq;
                    let ops: Vec<Op> = std::iter::once(op).chain(rest.by_ref()).collect();
                    let proof = proof.clone().filter(|p| p.seq >= from);
                    blocked = Some((needs, ops, proof));
                    break;
                }
                Err(why) => {
                    refused = Some(why);
                    break;
                }
            }
            match doc.apply_from(op, Some(sender)) {
                Ok(changes) => {
                    out.changes.merge(changes);
                    applied += 1;
                }
                Err(why) => {
                    refused = Some(TrustError::Refused(why));
                    break;
                }
            }
        }
        if applied > 0 {
            let seq = first + applied as Seq - 1;
            let chain = self.chains.get_mut(&author).expect("made above");
            for (n, stream) in (first..).zip(streams).take(applied) {
                chain.reach(n, stream);
            }
            if let Some(p) = proof.filter(|p| p.seq <= seq) {
                chain.proofs.insert(p.seq, p.sig);
            }
        }
        if let Some(why) = refused {
            // The op refused for its marks or by the document is among those not taken.
            let refused_here = matches!(why, TrustError::Refused(_) | TrustError::BadMark);
            let left = rest.count() + usize::from(refused_here);
            out.refused.push((author.clone(), left.max(1), why));
        }
        if let Some((needs, ops, proof)) = blocked {
            let used = self.waiting_per_sender.entry(sender.clone()).or_default();
            if *used + ops.len() > MAX_WAITING_PER_SENDER {
                out.refused
                    .push((author.clone(), ops.len(), TrustError::OverBudget));
            } else {
                *used += ops.len();
                self.blocked.entry(needs.author).or_default().push((
                    needs.seq,
                    Waiting {
                        sender: sender.clone(),
                        ops,
                        proof,
                    },
                ));
            }
        }
        if applied > 0 {
            self.wake(doc, &author, out);
        }
    }

    /// Holds a third author's ops from `sender` until a proof covers them, within the sender's
    /// budget of [`MAX_HELD_BYTES_PER_SENDER`].
    fn hold(&mut self, author: &PeerId, sender: &PeerId, ops: Vec<Op>) -> Result<(), TrustError> {
        let bytes: usize = ops.iter().map(Op::estimated_size).sum();
        let used = self.held_bytes.entry(sender.clone()).or_default();
        if *used + bytes > MAX_HELD_BYTES_PER_SENDER {
            return Err(TrustError::OverBudget);
        }
        *used += bytes;
        self.held
            .entry((author.clone(), sender.clone()))
            .or_default()
            .extend(ops);
        Ok(())
    }

    fn take_held(&mut self, author: &PeerId, sender: &PeerId) -> Option<Vec<Op>> {
        let ops = self.held.remove(&(author.clone(), sender.clone()))?;
        let bytes: usize = ops.iter().map(Op::estimated_size).sum();
        if let Some(used) = self.held_bytes.get_mut(sender) {
            *used = used.saturating_sub(bytes);
        }
        Some(ops)
    }

    /// Retries the ops waiting for `author`'s chain, now that it has moved on: its own after a
    /// gap, and erases and clears (with what follows them) that name its ops.
    fn wake(&mut self, doc: &mut Document, author: &PeerId, out: &mut Admission) {
        let reached = self.chains.get(author).map_or(0, |c| c.seq);
        if let Some(blocked) = self.blocked.remove(author) {
            let (ready, still): (Vec<_>, Vec<_>) = blocked
                .into_iter()
                .partition(|(needs, _)| *needs <= reached);
            if !still.is_empty() {
                self.blocked.insert(author.clone(), still);
            }
            for (_, w) in ready {
                if let Some(used) = self.waiting_per_sender.get_mut(&w.sender) {
                    *used = used.saturating_sub(w.ops.len());
                }
                self.admit_group(doc, &w.sender, w.ops, w.proof, out);
            }
        }
        let Some(mut waiting) = self.waiting.remove(author) else {
            return;
        };
        waiting.sort_by_key(|w| w.ops.first().map(|op| op.seq));
        let held = self.chains.get(author).map(|c| c.seq).unwrap_or(0);
        let mut still = Vec::new();
        let mut ready = Vec::new();
        for w in waiting {
            if let Some(used) = self.waiting_per_sender.get_mut(&w.sender) {
                *used = used.saturating_sub(w.ops.len());
            }
            let reaches = w.ops.first().is_some_and(|op| op.seq <= held + 1);
            if reaches {
                ready.push(w)
            } else {
                still.push(w)
            }
        }
        for w in &still {
            *self.waiting_per_sender.entry(w.sender.clone()).or_default() += w.ops.len();
        }
        if !still.is_empty() {
            self.waiting.insert(author.clone(), still);
        }
        for w in ready {
            // May wake further waiting ops in turn; each pass consumes what it takes.
            self.admit_group(doc, &w.sender, w.ops, w.proof, out);
        }
    }

    /// Forgets what senders no longer present had waiting.
    pub fn retain_senders(&mut self, present: impl Fn(&PeerId) -> bool) {
        for list in self.waiting.values_mut() {
            list.retain(|w| present(&w.sender));
        }
        self.waiting.retain(|_, list| !list.is_empty());
        for list in self.blocked.values_mut() {
            list.retain(|(_, w)| present(&w.sender));
        }
        self.blocked.retain(|_, list| !list.is_empty());
        self.waiting_per_sender.retain(|sender, _| present(sender));
        self.held.retain(|(_, sender), _| present(sender));
        self.held_bytes.retain(|sender, _| present(sender));
    }

    /// What the holder of `have` lacks, as signed batches of at most `max_bytes` (by
    /// [`Op::estimated_size`]; an op larger than that travels alone). Mine are signed now up to
    /// my last op; another author's ops past their last proof here are left out (nobody could
    /// check them). Proofs go sparingly, since checking one costs the receiver about a
    /// millisecond: at the end of each author's ops, and where the next proof held would leave
    /// more than [`PROOF_SPAN_BYTES`] unproven; a batch ends at each proof it carries, so a
    /// receiver checks one per author per message, and keeps proofs no further apart than the
    /// ones sent (what it hands on later is cut the same way).
    pub fn sync_batches(
        &mut self,
        doc: &Document,
        have: &VersionVector,
        me: &PeerId,
        key: &Keypair,
        max_bytes: usize,
    ) -> Vec<SignedBatch> {
        if self.chains.get(me).is_some_and(|c| c.proven() < c.seq) {
            self.seal(key, me);
        }
        let missing = doc.missing_from(have);
        // Per author: how far its ops can be proven here, and where proofs go (see above).
        let mut runs: HashMap<&PeerId, Vec<&Op>> = HashMap::new();
        for op in &missing {
            runs.entry(&op.author).or_default().push(op);
        }
        let mut plans: HashMap<&PeerId, (Seq, BTreeMap<Seq, Signature>)> = HashMap::new();
        for (author, run) in runs {
            let Some(chain) = self.chains.get(author) else {
                continue;
            };
            // Up to the last proof within the ops the document holds: a proof may reach further
            // (ops the ledger took wait in the document for what they depend on), but what it
            // covers cannot be sent yet.
            let (Some(first), Some(last)) = (run.first(), run.last()) else {
                continue;
            };
            let (first, last) = (first.seq, last.seq);
            let Some((&proven, _)) = chain.proofs.range(first..=last).next_back() else {
                continue;
            };
            let run: Vec<&Op> = run.into_iter().take_while(|op| op.seq <= proven).collect();
            // Bytes up to and including each op of the run.
            let mut upto = Vec::with_capacity(run.len());
            let mut total = 0;
            for op in &run {
                total += op.estimated_size();
                upto.push(total);
            }
            let bytes_to = |seq: Seq| upto[(seq - first) as usize];
            let held: Vec<(Seq, Signature)> = chain
                .proofs
                .range(first..=proven)
                .map(|(s, sig)| (*s, *sig))
                .collect();
            let mut attach = BTreeMap::new();
            let mut from = 0;
            for (k, (seq, sig)) in held.iter().enumerate() {
                let far = held
                    .get(k + 1)
                    .is_none_or(|(next, _)| bytes_to(*next) - from > PROOF_SPAN_BYTES);
                if far {
                    attach.insert(*seq, *sig);
                    from = bytes_to(*seq);
                }
            }
            plans.insert(author, (proven, attach));
        }
        // In the document's order (it interleaves authors so that clocks rise gradually).
        let mut out: Vec<SignedBatch> = Vec::new();
        let mut size = 0;
        let mut closed = true;
        for op in missing {
            let Some((proven, attach)) = plans.get(&op.author) else {
                continue;
            };
            if op.seq > *proven {
                continue;
            }
            let s = op.estimated_size();
            if closed || size + s > max_bytes {
                out.push(SignedBatch::default());
                size = 0;
                closed = false;
            }
            let batch = out.last_mut().expect("pushed above");
            batch.ops.push(op.clone());
            size += s;
            if let Some(cert) = self.certs.get(&op.author)
                && !batch.certs.contains(cert)
            {
                batch.certs.push(cert.clone());
            }
            if let Some(sig) = attach.get(&op.seq) {
                batch.proofs.push(Proof {
                    author: op.author.clone(),
                    seq: op.seq,
                    sig: *sig,
                });
                closed = true;
            }
        }
        out
    }
}

/// The canonical bytes of an op, hashed into its author's chain: every field, length-prefixed,
/// big-endian, floats by their bits.
pub fn canonical(op: &Op, out: &mut Vec<u8>) {
    put_str(out, &op.author.0);
    out.extend_from_slice(&op.seq.to_be_bytes());
    out.extend_from_slice(&op.lamport.to_be_bytes());
    match &op.op {
        OpKind::Add {
            shape,
            color,
            width,
        } => {
            out.push(1);
            put_shape(out, shape);
            out.extend_from_slice(&[color.r, color.g, color.b]);
            out.extend_from_slice(&width.to_bits().to_be_bytes());
        }
        OpKind::Extend { element, points } => {
            out.push(2);
            out.extend_from_slice(&element.to_be_bytes());
            put_points(out, points);
        }
        OpKind::Finish { element } => {
            out.push(3);
            out.extend_from_slice(&element.to_be_bytes());
        }
        OpKind::Erase { targets, marks } => {
            out.push(4);
            put_len(out, targets.len());
            for OpId { author, seq } in targets {
                put_str(out, &author.0);
                out.extend_from_slice(&seq.to_be_bytes());
            }
            put_marks(out, marks);
        }
        OpKind::Clear { seen, marks } => {
            out.push(5);
            put_len(out, seen.0.len());
            for (author, seq) in &seen.0 {
                put_str(out, &author.0);
                out.extend_from_slice(&seq.to_be_bytes());
            }
            put_marks(out, marks);
        }
        OpKind::Undo { target } => {
            out.push(6);
            out.extend_from_slice(&target.to_be_bytes());
        }
        OpKind::Redo { target } => {
            out.push(7);
            out.extend_from_slice(&target.to_be_bytes());
        }
    }
}

/// Marks, when there are any (none adds nothing: ops from before marks keep their bytes, and the
/// op's bytes are length-prefixed in the chain, so what follows is unambiguous).
fn put_marks(out: &mut Vec<u8>, marks: &Marks) {
    if marks.is_empty() {
        return;
    }
    put_len(out, marks.len());
    for (author, mark) in marks {
        put_str(out, &author.0);
        out.extend_from_slice(&mark.0);
    }
}

fn put_len(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(&(n as u64).to_be_bytes());
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_len(out, s.len());
    out.extend_from_slice(s.as_bytes());
}

fn put_point(out: &mut Vec<u8>, p: &Point) {
    for v in [p.x, p.y, p.pressure] {
        out.extend_from_slice(&v.to_bits().to_be_bytes());
    }
}

fn put_points(out: &mut Vec<u8>, points: &[Point]) {
    put_len(out, points.len());
    points.iter().for_each(|p| put_point(out, p));
}

fn put_shape(out: &mut Vec<u8>, shape: &Shape) {
    match shape {
        Shape::Stroke { points } => {
            out.push(1);
            put_points(out, points);
        }
        Shape::Line { from, to } | Shape::Rect { from, to } | Shape::Ellipse { from, to } => {
            out.push(match shape {
                Shape::Line { .. } => 2,
                Shape::Rect { .. } => 3,
                _ => 4,
            });
            put_point(out, from);
            put_point(out, to);
        }
        Shape::Text { at, text, size } => {
            out.push(5);
            put_point(out, at);
            put_str(out, text);
            out.extend_from_slice(&size.to_bits().to_be_bytes());
        }
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(HEX[usize::from(b >> 4)] as char);
        s.push(HEX[usize::from(b & 15)] as char);
    }
    s
}

fn unhex<const N: usize>(s: &str) -> Option<[u8; N]> {
    let digits = s.as_bytes();
    if digits.len() != 2 * N {
        return None;
    }
    let value = |d: u8| match d {
        b'0'..=b'9' => Some(d - b'0'),
        b'a'..=b'f' => Some(d - b'a' + 10),
        b'A'..=b'F' => Some(d - b'A' + 10),
        _ => None,
    };
    let mut out = [0; N];
    for (i, pair) in digits.chunks_exact(2).enumerate() {
        out[i] = value(pair[0])? << 4 | value(pair[1])?;
    }
    Some(out)
}

/// Parses hex digits of `N` bytes (a seed, a key).
pub fn from_hex<const N: usize>(s: &str) -> Option<[u8; N]> {
    unhex(s)
}

macro_rules! hex_serde {
    ($ty:ident, $n:literal, $what:literal) => {
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&hex(&self.0))
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<$ty, D::Error> {
                let s = String::deserialize(d)?;
                unhex::<$n>(&s)
                    .map($ty)
                    .ok_or_else(|| serde::de::Error::custom(concat!("not ", $what)))
            }
        }

        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($ty), hex(&self.0))
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&hex(&self.0))
            }
        }
    };
}

hex_serde!(PublicKey, 32, "a key: 64 hex digits");
hex_serde!(Signature, 64, "a signature: 128 hex digits");
hex_serde!(Mark, 16, "a mark: 32 hex digits");

#[cfg(test)]
mod tests {
    use super::*;
    use crate::color::Color;
    use crate::sync::SYNC_BATCH_BYTES;

    /// A signed-in user: key, certificate, replica and ledger.
    struct User {
        key: Keypair,
        me: PeerId,
        doc: Document,
        ledger: Ledger,
    }

    fn server() -> Keypair {
        Keypair::derive(b"test server", b"secret")
    }

    fn user(name: &str, seed: u8) -> User {
        let key = Keypair::from_seed([seed; 32]);
        let me = PeerId(name.into());
        let mut ledger = Ledger::new();
        ledger.trust_server(server().public());
        let cert = Certificate::issue(&server(), me.clone(), key.public());
        ledger.learn(&cert).unwrap();
        User {
            key,
            me,
            doc: Document::new(),
            ledger,
        }
    }

    fn stroke(x: f32) -> OpKind {
        OpKind::Add {
            shape: Shape::Stroke {
                points: vec![Point::new(x, 1.0, 0.5), Point::new(x + 1.0, 2.0, 0.5)],
            },
            color: Color::rgb(1, 2, 3),
            width: 2.0,
        }
    }

    impl User {
        fn draw(&mut self, n: usize) -> Vec<Op> {
            (0..n)
                .map(|i| {
                    let (op, _) = self.doc.make(&self.me, stroke(i as f32));
                    self.ledger.record_mine(&op, &self.key);
                    op
                })
                .collect()
        }

        fn cert(&self) -> Certificate {
            self.ledger.certificate(&self.me).unwrap().clone()
        }

        /// What `other` sends me when I say hello.
        fn sync_from(&mut self, other: &mut User) -> Vec<Admission> {
            let have = self.doc.version_vector();
            let batches = other.ledger.sync_batches(
                &other.doc,
                &have,
                &other.me,
                &other.key,
                SYNC_BATCH_BYTES,
            );
            batches
                .into_iter()
                .map(|b| {
                    self.ledger
                        .admit(&mut self.doc, &other.me, b.ops, b.proofs, b.certs)
                })
                .collect()
        }

        fn visible(&self) -> Vec<OpId> {
            self.doc.visible().map(|e| e.id.clone()).collect()
        }
    }

    fn refusals(admissions: &[Admission]) -> Vec<TrustError> {
        admissions
            .iter()
            .flat_map(|a| a.refused.iter().map(|r| r.2.clone()))
            .collect()
    }

    #[test]
    fn certificates_check_against_the_servers_key_only() {
        let key = Keypair::from_seed([1; 32]).public();
        let cert = Certificate::issue(&server(), PeerId("alice".into()), key);
        assert!(cert.is_signed_by_one_of(&[server().public()]));
        let other_server = Keypair::derive(b"test server", b"another secret").public();
        assert!(!cert.is_signed_by_one_of(&[other_server]));
        let mut renamed = cert.clone();
        renamed.peer = PeerId("mallory".into());
        assert!(!renamed.is_signed_by_one_of(&[server().public()]));
        let mut rekeyed = cert.clone();
        rekeyed.key = Keypair::from_seed([2; 32]).public();
        assert!(!rekeyed.is_signed_by_one_of(&[server().public()]));

        let mut ledger = Ledger::new();
        assert_eq!(
            ledger.learn(&cert),
            Err(TrustError::BadCertificate),
            "no server trusted yet"
        );
        ledger.trust_server(server().public());
        assert_eq!(ledger.learn(&cert), Ok(()));
        let second = Certificate::issue(&server(), PeerId("alice".into()), rekeyed.key);
        assert_eq!(
            ledger.learn(&second),
            Err(TrustError::BadCertificate),
            "one peer id, one key"
        );
        assert_eq!(ledger.key_of(&PeerId("alice".into())), Some(key));
    }

    #[test]
    fn a_late_joiner_gets_a_departed_authors_work_through_a_third_peer() {
        let (mut alice, mut bob, mut carol) = (user("alice", 1), user("bob", 2), user("carol", 3));
        let ops = alice.draw(40);
        // Alice broadcasts in three messages, sealing the last; bob takes them from her.
        for (i, chunk) in ops.chunks(15).enumerate() {
            let proof = alice
                .ledger
                .seal_live(&alice.key, &alice.me, chunk, 1_000.0 * i as f64);
            let certs = vec![alice.cert()];
            let a = bob.ledger.admit(
                &mut bob.doc,
                &alice.me,
                chunk.to_vec(),
                proof.into_iter().collect(),
                certs,
            );
            assert!(a.refused.is_empty(), "{:?}", a.refused);
        }
        assert_eq!(bob.ledger.chain(&alice.me).unwrap().proven(), 40);
        // Alice leaves; carol joins and gets everything from bob.
        let admissions = carol.sync_from(&mut bob);
        assert!(
            refusals(&admissions).is_empty(),
            "{:?}",
            refusals(&admissions)
        );
        assert_eq!(carol.visible(), bob.visible());
        assert_eq!(carol.visible().len(), 40);
        assert_eq!(carol.ledger.chain(&alice.me).unwrap().proven(), 40);
        // And she can hand them on in turn.
        let mut dave = user("dave", 4);
        assert!(refusals(&dave.sync_from(&mut carol)).is_empty());
        assert_eq!(dave.visible().len(), 40);
    }

    #[test]
    fn nobody_writes_in_a_departed_authors_name() {
        let (mut alice, mut bob, mut mallory) =
            (user("alice", 1), user("bob", 2), user("mallory", 5));
        let ops = alice.draw(3);
        let proof = alice.ledger.seal(&alice.key, &alice.me).unwrap();
        let a = bob.ledger.admit(
            &mut bob.doc,
            &alice.me,
            ops.clone(),
            vec![proof.clone()],
            vec![alice.cert()],
        );
        assert!(a.refused.is_empty());
        // Mallory got alice's ops too, and now forges her 4th.
        for op in &ops {
            mallory.doc.apply(op.clone());
            mallory.ledger.record_mine(op, &mallory.key);
        }
        let (forged, _) = mallory.doc.make(&alice.me, stroke(99.0));
        mallory.ledger.record_mine(&forged, &mallory.key);
        let visible = bob.visible();

        // Without a proof: held, unseen, until a proof comes (none will), and forgotten when
        // mallory goes.
        let a = bob.ledger.admit(
            &mut bob.doc,
            &mallory.me,
            vec![forged.clone()],
            vec![],
            vec![],
        );
        assert!(a.refused.is_empty());
        assert_eq!(a.changes.integrated, 0);
        assert_eq!(bob.ledger.held.len(), 1);
        bob.ledger.retain_senders(|p| *p != mallory.me);
        assert!(bob.ledger.held.is_empty() && bob.ledger.held_bytes.is_empty());
        // Signed with mallory's own key: refused.
        let by_mallory = mallory.ledger.seal(&mallory.key, &alice.me).unwrap();
        let a = bob.ledger.admit(
            &mut bob.doc,
            &mallory.me,
            vec![forged.clone()],
            vec![by_mallory],
            vec![alice.cert()],
        );
        assert_eq!(refusals(&[a]), vec![TrustError::BadProof]);
        // Alice's real proof of seq 3 replayed as a proof of the forged seq 4: no.
        let replayed = Proof {
            seq: 4,
            ..proof.clone()
        };
        let a = bob.ledger.admit(
            &mut bob.doc,
            &mallory.me,
            vec![forged.clone()],
            vec![replayed],
            vec![],
        );
        assert_eq!(refusals(&[a]), vec![TrustError::BadProof]);
        // A certificate of alice's peer id for mallory's key, made by a server bob does not trust.
        let rogue = Keypair::derive(b"rogue", b"server");
        let fake = Certificate::issue(&rogue, alice.me.clone(), mallory.key.public());
        let mut fresh = user("erin", 6);
        let a = fresh.ledger.admit(
            &mut fresh.doc,
            &mallory.me,
            ops.clone(),
            vec![Proof {
                author: alice.me.clone(),
                seq: 3,
                sig: mallory.key.sign(b"anything"),
            }],
            vec![fake],
        );
        assert_eq!(refusals(&[a]), vec![TrustError::UnknownAuthor]);
        assert!(fresh.visible().is_empty());
        assert_eq!(bob.visible(), visible, "nothing forged shows");
    }

    #[test]
    fn a_changed_op_breaks_its_chain() {
        let (mut alice, mut bob) = (user("alice", 1), user("bob", 2));
        let ops = alice.draw(3);
        let proof = alice.ledger.seal(&alice.key, &alice.me).unwrap();
        // Each field of one op changed in turn: the proof no longer covers the batch.
        type Change = Box<dyn Fn(&mut Op)>;
        let changes: Vec<Change> = vec![
            Box::new(|op| op.lamport += 1),
            Box::new(|op| {
                if let OpKind::Add { color, .. } = &mut op.op {
                    color.r ^= 1;
                }
            }),
            Box::new(|op| {
                if let OpKind::Add { width, .. } = &mut op.op {
                    *width += 1.0;
                }
            }),
            Box::new(|op| {
                if let OpKind::Add {
                    shape: Shape::Stroke { points },
                    ..
                } = &mut op.op
                {
                    points[1].pressure = 0.25;
                }
            }),
        ];
        for change in changes {
            let mut tampered = ops.clone();
            change(&mut tampered[1]);
            let mut carol = user("carol", 3);
            let a = carol.ledger.admit(
                &mut carol.doc,
                &bob.me,
                tampered,
                vec![proof.clone()],
                vec![alice.cert()],
            );
            assert_eq!(refusals(&[a]), vec![TrustError::BadProof]);
            assert!(carol.visible().is_empty());
        }
        let a = bob.ledger.admit(
            &mut bob.doc,
            &bob.me.clone(),
            ops,
            vec![proof],
            vec![alice.cert()],
        );
        assert!(a.refused.is_empty(), "the untouched batch checks");
        assert_eq!(bob.visible().len(), 3);
    }

    #[test]
    fn a_senders_own_ops_need_its_certificate_but_no_proof() {
        let (mut alice, mut bob) = (user("alice", 1), user("bob", 2));
        let ops = alice.draw(2);
        let a = bob
            .ledger
            .admit(&mut bob.doc, &alice.me, ops.clone(), vec![], vec![]);
        assert_eq!(
            refusals(&[a]),
            vec![TrustError::UnknownAuthor],
            "no certificate yet"
        );
        bob.ledger.learn(&alice.cert()).unwrap();
        let a = bob
            .ledger
            .admit(&mut bob.doc, &alice.me, ops, vec![], vec![]);
        assert!(a.refused.is_empty());
        assert_eq!(a.changes.integrated, 2);
        assert_eq!(bob.ledger.chain(&alice.me).unwrap().proven(), 0);
        // A proof she sends must check, even for her own ops.
        let more = alice.draw(1);
        let bad = Proof {
            author: alice.me.clone(),
            seq: 3,
            sig: Signature([7; 64]),
        };
        let a = bob
            .ledger
            .admit(&mut bob.doc, &alice.me, more, vec![bad], vec![]);
        assert_eq!(refusals(&[a]), vec![TrustError::BadProof]);
        assert_eq!(bob.visible().len(), 2);
    }

    #[test]
    fn invented_authors_are_refused_without_growing_anything() {
        let mut bob = user("bob", 2);
        let mallory = user("mallory", 5);
        let ops: Vec<Op> = (0..5_000)
            .map(|i| Op {
                author: PeerId(format!("ghost-{i}")),
                seq: 1,
                lamport: 1,
                op: stroke(i as f32),
            })
            .collect();
        let a = bob
            .ledger
            .admit(&mut bob.doc, &mallory.me, ops, vec![], vec![]);
        assert_eq!(a.refused.len(), 5_000);
        assert!(a.refused.iter().all(|r| r.2 == TrustError::UnknownAuthor));
        assert!(bob.visible().is_empty());
        assert!(bob.doc.version_vector().0.is_empty());
        assert!(bob.ledger.chains.len() <= 1, "no chain kept for strangers");
    }

    #[test]
    fn ops_past_a_gap_wait_for_it_within_a_budget() {
        let (mut alice, mut bob) = (user("alice", 1), user("bob", 2));
        bob.ledger.learn(&alice.cert()).unwrap();
        let ops = alice.draw(6);
        // Live ops 4..6 overtake the sync reply that carries 1..3.
        let a = bob
            .ledger
            .admit(&mut bob.doc, &alice.me, ops[3..].to_vec(), vec![], vec![]);
        assert!(a.refused.is_empty());
        assert!(bob.visible().is_empty(), "they wait");
        let a = bob
            .ledger
            .admit(&mut bob.doc, &alice.me, ops[..3].to_vec(), vec![], vec![]);
        assert!(a.refused.is_empty());
        assert_eq!(
            a.changes.integrated, 6,
            "the gap filled and the rest followed"
        );
        assert_eq!(bob.ledger.waiting_per_sender.get(&alice.me), Some(&0));
        // Her last op again (a repeated sync) is held already: nothing waits.
        bob.ledger
            .admit(&mut bob.doc, &alice.me, ops[5..].to_vec(), vec![], vec![]);
        assert_eq!(bob.ledger.waiting_per_sender.get(&alice.me), Some(&0));
        assert!(bob.ledger.waiting.is_empty());

        // A flood of ops past a gap runs out of budget.
        let far: Vec<Op> = (0..MAX_WAITING_PER_SENDER as u64 + 1)
            .map(|i| Op {
                author: alice.me.clone(),
                seq: 100 + i,
                lamport: 100 + i,
                op: OpKind::Finish { element: 1 },
            })
            .collect();
        let a = bob
            .ledger
            .admit(&mut bob.doc, &alice.me, far.clone(), vec![], vec![]);
        assert_eq!(refusals(&[a]), vec![TrustError::OverBudget]);
        // Exactly the budget is taken; one more op is not.
        let (fits, over) = far.split_at(MAX_WAITING_PER_SENDER);
        let a = bob
            .ledger
            .admit(&mut bob.doc, &alice.me, fits.to_vec(), vec![], vec![]);
        assert!(a.refused.is_empty());
        let one_more = vec![Op {
            seq: over[0].seq + 10,
            ..over[0].clone()
        }];
        let a = bob
            .ledger
            .admit(&mut bob.doc, &alice.me, one_more, vec![], vec![]);
        assert_eq!(refusals(&[a]), vec![TrustError::OverBudget]);
        // What a present sender has waiting stays; a departed one's goes.
        bob.ledger.retain_senders(|p| *p == alice.me);
        assert!(!bob.ledger.waiting.is_empty());
        bob.ledger.retain_senders(|_| false);
        assert!(bob.ledger.waiting.is_empty());
    }

    /// Alice's strokes as they went live to bob: signed as a broadcast would be.
    fn live(alice: &mut User, bob: &mut User, strokes: usize, points: usize) {
        for i in 0..strokes {
            let points = (0..points)
                .map(|j| Point::new(j as f32, (i % 1000) as f32, 0.5))
                .collect();
            let (op, _) = alice.doc.make(
                &alice.me,
                OpKind::Add {
                    shape: Shape::Stroke { points },
                    color: Color::rgb(0, 0, 0),
                    width: 1.0,
                },
            );
            alice.ledger.record_mine(&op, &alice.key);
            let proof = alice.ledger.seal_live(
                &alice.key,
                &alice.me,
                std::slice::from_ref(&op),
                i as f64 * 1e3,
            );
            let a = bob.ledger.admit(
                &mut bob.doc,
                &alice.me,
                vec![op],
                proof.into_iter().collect(),
                vec![],
            );
            assert!(a.refused.is_empty());
        }
    }

    /// Hands `from`'s reply to `to`, checking every batch; returns how many proofs it carried.
    fn hand_on(from: &mut User, to: &mut User) -> usize {
        let batches = from.ledger.sync_batches(
            &from.doc,
            &to.doc.version_vector(),
            &from.me,
            &from.key,
            SYNC_BATCH_BYTES,
        );
        let mut proofs = 0;
        // Filled greedily: a batch that does not end at a proof ends because the next op would
        // not fit.
        for pair in batches.windows(2) {
            let size: usize = pair[0].ops.iter().map(Op::estimated_size).sum();
            let next = pair[1].ops[0].estimated_size();
            assert!(!pair[0].proofs.is_empty() || size + next > SYNC_BATCH_BYTES);
        }
        for b in batches {
            let size: usize = b.ops.iter().map(Op::estimated_size).sum();
            assert!(size <= SYNC_BATCH_BYTES || b.ops.len() == 1, "{size}");
            for p in &b.proofs {
                let last = b.ops.iter().rfind(|op| op.author == p.author);
                assert_eq!(
                    last.map(|op| op.seq),
                    Some(p.seq),
                    "a batch ends at its proof"
                );
            }
            proofs += b.proofs.len();
            let a = to
                .ledger
                .admit(&mut to.doc, &from.me, b.ops, b.proofs, b.certs);
            assert!(a.refused.is_empty(), "{:?}", a.refused);
        }
        proofs
    }

    #[test]
    fn sync_batches_fit_the_budget_and_carry_few_proofs_hop_after_hop() {
        let (mut alice, mut bob) = (user("alice", 1), user("bob", 2));
        bob.ledger.learn(&alice.cert()).unwrap();
        // About 5 MB of big strokes, then a few unsealed ops bob cannot hand on.
        live(&mut alice, &mut bob, 600, 200);
        let tail = alice.draw(3);
        bob.ledger
            .admit(&mut bob.doc, &alice.me, tail, vec![], vec![]);
        let proven = bob.ledger.chain(&alice.me).unwrap().proven();
        assert!(proven < 603);
        let bytes: usize = bob.doc.ops().map(Op::estimated_size).sum();
        assert!(bytes > 2 * PROOF_SPAN_BYTES, "{bytes}");
        // Carol gets what bob can prove, in many messages but with a proof every 2 MB only; and
        // hands it on to dave, and dave to erin, the same way.
        let mut carol = user("carol", 3);
        let proofs = hand_on(&mut bob, &mut carol);
        assert!(
            (2..=bytes / PROOF_SPAN_BYTES + 2).contains(&proofs),
            "{proofs} proofs for {bytes} bytes"
        );
        assert_eq!(carol.doc.version_vector().get(&alice.me), proven);
        let (mut dave, mut erin) = (user("dave", 4), user("erin", 5));
        let again = hand_on(&mut carol, &mut dave);
        assert!(
            again <= proofs + 1,
            "{again} proofs on the second hop, {proofs} on the first"
        );
        hand_on(&mut dave, &mut erin);
        assert_eq!(erin.visible(), carol.visible());
        // Alice herself hands on everything, her tail signed on the spot.
        let mut frank = user("frank", 6);
        hand_on(&mut alice, &mut frank);
        assert_eq!(frank.doc.version_vector().get(&alice.me), 603);
    }

    impl User {
        /// Makes `kind` here, marked by my ledger as the client does.
        fn make(&mut self, kind: OpKind) -> Op {
            let kind = self.ledger.mark(&self.doc, &self.me, kind);
            let (op, _) = self.doc.make(&self.me, kind);
            self.ledger.record_mine(&op, &self.key);
            op
        }

        /// Takes `ops` (with a proof of mine to the last) from `from`, as a peer's own.
        fn take(&mut self, from: &mut User, ops: Vec<Op>) -> Admission {
            let proofs = from.ledger.seal(&from.key, &from.me).into_iter().collect();
            self.ledger
                .admit(&mut self.doc, &from.me, ops, proofs, vec![from.cert()])
        }
    }

    fn reasons(a: &Admission) -> Vec<TrustError> {
        a.refused.iter().map(|r| r.2.clone()).collect()
    }

    #[test]
    fn a_clear_or_erase_naming_ops_not_yet_made_is_refused_when_they_come() {
        // Mallory, a member, sends bob (not alice) a clear and an erase naming alice's next ops,
        // stamped far ahead. Without marks they would wait, then hide what alice draws next on
        // bob's screen while she still sees it. Marks cannot be made before the ops exist.
        let (mut alice, mut bob, mut mallory) =
            (user("alice", 1), user("bob", 2), user("mallory", 5));
        let first = alice.draw(1);
        assert!(bob.take(&mut alice, first.clone()).refused.is_empty());
        assert!(mallory.take(&mut alice, first).refused.is_empty());
        let her = alice.me.clone();
        let next = |k: Seq| OpId {
            author: her.clone(),
            seq: 1 + k,
        };
        let guess = |n: u8| [(her.clone(), Mark([n; 16]))].into();
        let far = crate::document::MAX_CLOCK_STEP - 1;
        let forged = [
            OpKind::Erase {
                targets: vec![next(1), next(2)],
                marks: guess(1),
            },
            OpKind::Clear {
                seen: VersionVector([(her.clone(), 3)].into()),
                marks: guess(2),
            },
        ];
        let mut sent = Vec::new();
        for (seq, op) in (1..).zip(forged) {
            let op = Op {
                author: mallory.me.clone(),
                seq,
                lamport: far,
                op,
            };
            mallory.ledger.record_mine(&op, &mallory.key);
            sent.push(op);
        }
        let a = bob.take(&mut mallory, sent);
        assert!(
            a.refused.is_empty(),
            "both wait for alice's ops: {:?}",
            a.refused
        );
        assert_eq!(bob.doc.version_vector().get(&mallory.me), 0);
        // Alice draws on: bob takes her strokes and refuses mallory's ops when they are due.
        let more = alice.draw(2);
        let a = bob.take(&mut alice, more);
        assert_eq!(reasons(&a), vec![TrustError::BadMark], "{:?}", a.refused);
        assert_eq!(bob.visible(), alice.visible());
        assert_eq!(bob.visible().len(), 3);
        assert_eq!(bob.doc.version_vector().get(&mallory.me), 0);
        // An unmarked one naming ops bob has is refused on the spot, as is a wrong mark.
        let mut late = user("mallory", 5);
        let (unmarked, _) = late.doc.make(&late.me, OpKind::erase(vec![next(0)]));
        late.ledger.record_mine(&unmarked, &late.key);
        let a = bob.take(&mut late, vec![unmarked]);
        assert_eq!(reasons(&a), vec![TrustError::BadMark]);
        assert_eq!(bob.visible().len(), 3);
    }

    #[test]
    fn honest_marks_check_whether_the_named_ops_come_before_or_after() {
        // Carol clears having seen 100 of alice's ops (past a checkpoint, not on one) and erases
        // one she drew early; bob checks the marks against his own chains, whether alice's ops
        // reach him before carol's (an old op's head is rebuilt from a checkpoint) or after.
        for alice_first in [true, false] {
            let (mut alice, mut bob, mut carol) =
                (user("alice", 1), user("bob", 2), user("carol", 3));
            let drawn = alice.draw(100);
            assert!(carol.take(&mut alice, drawn.clone()).refused.is_empty());
            let early = drawn[69].id();
            let erase = carol.make(OpKind::erase(vec![early.clone()]));
            let seen = carol.doc.version_vector();
            let clear = carol.make(OpKind::clear(seen));
            // Each mark is the head of alice's chain at the op named, hashed here from scratch.
            let head_at = |n: usize| {
                let mut chain = Chain::new(&alice.me);
                drawn[..n]
                    .iter()
                    .for_each(|op| chain.stream.absorb(op, &mut Vec::new()));
                [(alice.me.clone(), Mark::of(&chain.stream.head()))].into()
            };
            assert!(matches!(&erase.op, OpKind::Erase { marks, .. } if *marks == head_at(70)));
            assert!(matches!(&clear.op, OpKind::Clear { marks, .. } if *marks == head_at(100)));
            if alice_first {
                assert!(bob.take(&mut alice, drawn.clone()).refused.is_empty());
            }
            let a = bob.take(&mut carol, vec![erase.clone(), clear.clone()]);
            assert!(a.refused.is_empty(), "{:?}", a.refused);
            if !alice_first {
                assert_eq!(bob.doc.version_vector().get(&carol.me), 0, "waits");
                let a = bob.take(&mut alice, drawn.clone());
                assert!(a.refused.is_empty(), "{:?}", a.refused);
            }
            assert_eq!(bob.doc.version_vector().get(&carol.me), 2);
            assert!(bob.visible().is_empty(), "alice_first: {alice_first}");
            assert_eq!(bob.visible(), carol.visible());
            // The same erase with another author's mark, or marked at another op, is refused.
            let mut dave = user("carol", 3);
            assert!(dave.take(&mut alice, drawn.clone()).refused.is_empty());
            let mut forged = erase.clone();
            if let OpKind::Erase { marks, .. } = &mut forged.op {
                let other = alice.ledger.chain(&alice.me).unwrap().stream.head();
                marks.insert(alice.me.clone(), Mark::of(&other));
            }
            dave.ledger.record_mine(&forged, &dave.key);
            let mut erin = user("erin", 4);
            assert!(erin.take(&mut alice, drawn).refused.is_empty());
            let a = erin.take(&mut dave, vec![forged]);
            assert_eq!(reasons(&a), vec![TrustError::BadMark]);
            assert_eq!(erin.visible().len(), 100);
        }
    }

    #[test]
    fn a_blocked_clear_waits_through_partial_arrivals_and_leaves_with_its_sender() {
        // Carol's clear names alice's 5th op; alice's ops reach bob in two parts. The first part
        // wakes the clear without satisfying it: it must keep waiting, not be dropped.
        let (mut alice, mut bob, mut carol) = (user("alice", 1), user("bob", 2), user("carol", 3));
        let drawn = alice.draw(5);
        assert!(carol.take(&mut alice, drawn.clone()).refused.is_empty());
        let clear = carol.make(OpKind::clear(carol.doc.version_vector()));
        assert!(bob.take(&mut carol, vec![clear]).refused.is_empty());
        assert_eq!(bob.ledger.blocked.get(&alice.me).map(Vec::len), Some(1));
        let a = bob.ledger.admit(
            &mut bob.doc,
            &alice.me,
            drawn[..3].to_vec(),
            vec![],
            vec![alice.cert()],
        );
        assert!(a.refused.is_empty());
        assert_eq!(
            bob.ledger.blocked.get(&alice.me).map(Vec::len),
            Some(1),
            "still waiting"
        );
        assert_eq!(bob.doc.version_vector().get(&carol.me), 0);
        assert!(bob.take(&mut alice, drawn[3..].to_vec()).refused.is_empty());
        assert_eq!(
            bob.doc.version_vector().get(&carol.me),
            1,
            "taken once alice's 5th came"
        );
        assert!(bob.visible().is_empty());
        // A blocked op is forgotten when its sender leaves, and kept while it stays.
        let mut erin = user("erin", 5);
        let mine: Vec<Op> = carol
            .doc
            .ops()
            .filter(|op| op.author == carol.me)
            .cloned()
            .collect();
        assert!(erin.take(&mut carol, mine).refused.is_empty());
        assert!(
            !erin.ledger.blocked.is_empty(),
            "carol's clear waits for alice's ops"
        );
        erin.ledger.retain_senders(|p| *p == carol.me);
        assert!(!erin.ledger.blocked.is_empty(), "carol is still here");
        erin.ledger.retain_senders(|p| *p != carol.me);
        assert!(erin.ledger.blocked.is_empty(), "carol left");
    }

    #[test]
    fn the_waiting_budget_still_counts_ops_a_wake_leaves_waiting() {
        // Alice's ops 3 to 6 wait for her 2nd; her 1st comes and wakes them, and they wait on.
        // They still count against her budget: what fits after them is the budget less four.
        let (mut alice, mut bob) = (user("alice", 1), user("bob", 2));
        let drawn = alice.draw(MAX_WAITING_PER_SENDER + 3);
        let mut send = |ops: &[Op]| {
            bob.ledger.admit(
                &mut bob.doc,
                &alice.me,
                ops.to_vec(),
                vec![],
                vec![alice.cert()],
            )
        };
        assert!(send(&drawn[2..6]).refused.is_empty());
        assert!(send(&drawn[..1]).refused.is_empty());
        let fits = 6 + MAX_WAITING_PER_SENDER - 4;
        assert!(send(&drawn[6..fits]).refused.is_empty());
        let over = send(&drawn[fits..fits + 1]);
        assert_eq!(reasons(&over), vec![TrustError::OverBudget]);
    }

    #[test]
    fn marks_are_signed_and_never_made_beyond_the_chain() {
        // The marks are part of the bytes a proof covers: another mark is another op.
        let (alice, bob) = (PeerId("alice".into()), PeerId("bob".into()));
        let clear = |n: u8| Op {
            author: alice.clone(),
            seq: 2,
            lamport: 2,
            op: OpKind::Clear {
                seen: VersionVector([(bob.clone(), 1)].into()),
                marks: [(bob.clone(), Mark([n; 16]))].into(),
            },
        };
        let bytes = |op: &Op| {
            let mut out = Vec::new();
            canonical(op, &mut out);
            out
        };
        assert_ne!(bytes(&clear(1)), bytes(&clear(2)));
        // Ops the document has but the chain has not reached (applied around the ledger) get no
        // mark: a mark vouches for a chain this replica checked.
        let mut me = user("carol", 3);
        let mut other = user("dan", 4);
        let drawn = other.draw(3);
        me.ledger.admit(
            &mut me.doc,
            &other.me,
            drawn[..1].to_vec(),
            vec![],
            vec![other.cert()],
        );
        for op in &drawn[1..] {
            me.doc.apply(op.clone());
        }
        let kind = me
            .ledger
            .mark(&me.doc, &me.me, OpKind::erase(vec![drawn[2].id()]));
        assert!(matches!(kind, OpKind::Erase { marks, .. } if marks.is_empty()));
        let kind = me
            .ledger
            .mark(&me.doc, &me.me, OpKind::erase(vec![drawn[0].id()]));
        assert!(matches!(kind, OpKind::Erase { marks, .. } if marks.len() == 1));
    }

    #[test]
    fn a_third_authors_ops_wait_for_the_proof_in_a_later_message() {
        let (mut alice, bob, mut carol) = (user("alice", 1), user("bob", 2), user("carol", 3));
        let ops = alice.draw(6);
        let proof = alice.ledger.seal(&alice.key, &alice.me).unwrap();
        let certs = vec![alice.cert()];
        let a = carol.ledger.admit(
            &mut carol.doc,
            &bob.me,
            ops[..4].to_vec(),
            vec![],
            certs.clone(),
        );
        assert!(a.refused.is_empty());
        assert!(carol.visible().is_empty(), "held until proven");
        // Bob's next message, with the proof, releases them all.
        let a = carol.ledger.admit(
            &mut carol.doc,
            &bob.me,
            ops[4..].to_vec(),
            vec![proof.clone()],
            certs.clone(),
        );
        assert!(a.refused.is_empty(), "{:?}", a.refused);
        assert_eq!(a.changes.integrated, 6);
        assert!(carol.ledger.held.is_empty());
        // Held ops that a sender's next message does not continue are dropped, not mixed in.
        let mut frank = user("frank", 6);
        frank.ledger.admit(
            &mut frank.doc,
            &bob.me,
            ops[..4].to_vec(),
            vec![],
            certs.clone(),
        );
        let a = frank.ledger.admit(
            &mut frank.doc,
            &bob.me,
            ops[..6].to_vec(),
            vec![proof.clone()],
            certs.clone(),
        );
        assert!(a.refused.is_empty(), "{:?}", a.refused);
        assert_eq!(a.changes.integrated, 6);
        assert!(frank.ledger.held_bytes.values().all(|b| *b == 0));
        // A final proof that does not check throws away everything held with it.
        let mut dave = user("dave", 4);
        dave.ledger.admit(
            &mut dave.doc,
            &bob.me,
            ops[..4].to_vec(),
            vec![],
            certs.clone(),
        );
        let bad = Proof {
            sig: Signature([1; 64]),
            ..proof
        };
        let a = dave.ledger.admit(
            &mut dave.doc,
            &bob.me,
            ops[4..].to_vec(),
            vec![bad],
            certs.clone(),
        );
        assert_eq!(refusals(&[a]), vec![TrustError::BadProof]);
        assert!(dave.visible().is_empty() && dave.ledger.held.is_empty());
        // Held bytes are budgeted per sender.
        let big: Vec<Op> = (1..=MAX_HELD_BYTES_PER_SENDER / 1_000)
            .map(|seq| Op {
                author: alice.me.clone(),
                seq: seq as Seq,
                lamport: seq as u64,
                op: OpKind::Add {
                    shape: Shape::Stroke {
                        points: vec![Point::new(1.0, 1.0, 0.5); 100],
                    },
                    color: Color::rgb(0, 0, 0),
                    width: 1.0,
                },
            })
            .collect();
        let mut erin = user("erin", 5);
        let a = erin
            .ledger
            .admit(&mut erin.doc, &bob.me, big, vec![], certs);
        assert_eq!(refusals(&[a]), vec![TrustError::OverBudget]);
        assert!(erin.ledger.held_bytes.values().all(|b| *b == 0));
    }

    #[test]
    fn live_sealing_is_paced_but_never_skips_a_finished_stroke() {
        let mut alice = user("alice", 1);
        let op = |alice: &mut User, kind: OpKind, at: f64| {
            let (op, _) = alice.doc.make(&alice.me, kind);
            alice.ledger.record_mine(&op, &alice.key);
            alice
                .ledger
                .seal_live(&alice.key, &alice.me, &[op], at)
                .is_some()
        };
        let rect = OpKind::Add {
            shape: Shape::Rect {
                from: Point::new(1.0, 1.0, 0.5),
                to: Point::new(9.0, 9.0, 0.5),
            },
            color: Color::rgb(0, 0, 0),
            width: 1.0,
        };
        assert!(
            op(&mut alice, rect.clone(), 0.0),
            "a finished shape at once"
        );
        assert!(!op(&mut alice, stroke(1.0), 1.0), "a stroke's start waits");
        let grow = || OpKind::Extend {
            element: 2,
            points: vec![Point::new(5.0, 5.0, 0.5)],
        };
        assert!(!op(&mut alice, grow(), 10.0));
        assert!(
            op(&mut alice, grow(), SEAL_EVERY_MS),
            "growth every SEAL_EVERY_MS"
        );
        assert!(!op(&mut alice, grow(), SEAL_EVERY_MS + 1.0));
        assert!(op(
            &mut alice,
            OpKind::Finish { element: 2 },
            SEAL_EVERY_MS + 2.0
        ));
        assert!(op(&mut alice, rect, SEAL_EVERY_MS + 3.0));
        assert!(
            !op(&mut alice, grow(), SEAL_EVERY_MS + 3.0),
            "growth in the same ms waits"
        );
        // A clock that went back (a new page's `performance.now`) does not hold sealing up.
        assert!(!op(&mut alice, grow(), SEAL_EVERY_MS + 4.0));
        assert!(op(&mut alice, grow(), 1.0), "time went back: sealed");
        // Drawing with nobody there, the chain is still signed every SEAL_EVERY_BYTES.
        let mut offline = user("offline", 2);
        let mut bytes = 0;
        // (Each seal comes at the op that reaches the budget: up to one op late.)
        while bytes < 3 * (SEAL_EVERY_BYTES + 16_000) {
            let points = (0..500).map(|j| Point::new(j as f32, 1.0, 0.5)).collect();
            let (op, _) = offline.doc.make(
                &offline.me,
                OpKind::Add {
                    shape: Shape::Stroke { points },
                    color: Color::rgb(0, 0, 0),
                    width: 1.0,
                },
            );
            bytes += op.estimated_size();
            offline.ledger.record_mine(&op, &offline.key);
        }
        let chain = offline.ledger.chain(&offline.me).unwrap();
        assert_eq!(chain.proofs.len(), 3, "{bytes} bytes");
    }

    #[test]
    fn local_ids_certify_themselves() {
        let key = Keypair::from_seed([9; 32]);
        let local = local_author(&key.public());
        assert_eq!(self_certified_key(&local), Some(key.public()));
        assert_eq!(self_certified_key(&PeerId("local-1234abcd".into())), None);
        let mut early = User {
            me: local.clone(),
            doc: Document::new(),
            ledger: Ledger::new(),
            key,
        };
        let ops = early.draw(2);
        let proof = early.ledger.seal(&early.key, &local).unwrap();
        let mut bob = user("bob", 2);
        let sender = PeerId("carol".into());
        let a = bob
            .ledger
            .admit(&mut bob.doc, &sender, ops.clone(), vec![proof], vec![]);
        assert!(a.refused.is_empty());
        assert_eq!(bob.visible().len(), 2);
        // The same ops under another key's local id do not check.
        let other = local_author(&Keypair::from_seed([8; 32]).public());
        let forged: Vec<Op> = ops
            .iter()
            .map(|op| Op {
                author: other.clone(),
                ..op.clone()
            })
            .collect();
        let sig = early.ledger.seal(&early.key, &local).unwrap().sig;
        let a = bob.ledger.admit(
            &mut bob.doc,
            &sender,
            forged,
            vec![Proof {
                author: other,
                seq: 2,
                sig,
            }],
            vec![],
        );
        assert_eq!(refusals(&[a]), vec![TrustError::BadProof]);
    }

    #[test]
    fn stored_ops_keep_their_proofs_and_their_chain() {
        let (mut alice, mut bob) = (user("alice", 1), user("bob", 2));
        let ops = alice.draw(5);
        let proof = alice.ledger.seal(&alice.key, &alice.me).unwrap();
        bob.ledger.admit(
            &mut bob.doc,
            &alice.me,
            ops.clone(),
            vec![proof.clone()],
            vec![alice.cert()],
        );
        // Bob reloads: his storage gives back ops, proofs and certificates.
        let saved_ops: Vec<Op> = bob.doc.ops().cloned().collect();
        let saved_proofs: Vec<Proof> = bob.ledger.proofs().collect();
        let saved_certs: Vec<Certificate> = bob.ledger.certificates().cloned().collect();
        let mut reloaded = user("bob-again", 2);
        for c in saved_certs {
            reloaded.ledger.remember(c);
        }
        let forged = Proof {
            seq: 2,
            ..proof.clone()
        };
        let changes = reloaded.ledger.load(
            &mut reloaded.doc,
            saved_ops,
            saved_proofs.into_iter().chain([forged]),
        );
        assert_eq!(changes.integrated, 5);
        let chain = reloaded.ledger.chain(&alice.me).unwrap();
        assert_eq!(
            chain.proofs.keys().copied().collect::<Vec<_>>(),
            vec![5],
            "the bad one dropped"
        );
        // Alice's next ops, handed over by someone else, continue the stored chain.
        let more = alice.draw(2);
        let proof = alice.ledger.seal(&alice.key, &alice.me).unwrap();
        let a = reloaded
            .ledger
            .admit(&mut reloaded.doc, &bob.me, more, vec![proof], vec![]);
        assert!(a.refused.is_empty(), "{:?}", a.refused);
        assert_eq!(reloaded.visible().len(), 7);
        // And he hands all of it on.
        let mut carol = user("carol", 3);
        assert!(refusals(&carol.sync_from(&mut reloaded)).is_empty());
        assert_eq!(carol.visible().len(), 7);
    }

    #[test]
    fn keys_and_signatures_refuse_bad_hex() {
        let key = Keypair::from_seed([3; 32]).public();
        let text = format!("\"{key}\"");
        assert_eq!(text.len(), 66);
        let back: PublicKey = serde_json_from(&text).unwrap();
        assert_eq!(back, key);
        for bad in [
            "\"\"",
            "\"zz\"",
            "12",
            &format!("\"{key}00\""),
            &text.replace('a', "g"),
        ] {
            if bad != text {
                assert!(serde_json_from::<PublicKey>(bad).is_err(), "{bad}");
            }
        }
        // An all-zero key is not a point a signature can check against.
        assert!(!PublicKey([0; 32]).verifies(b"x", &Signature([0; 64])));
    }

    #[test]
    fn canonical_bytes_tell_every_shape_apart_and_hex_reads_either_case() {
        let (a, b) = (Point::new(1.0, 2.0, 0.5), Point::new(3.0, 4.0, 0.5));
        let shapes = [
            Shape::Line { from: a, to: b },
            Shape::Rect { from: a, to: b },
            Shape::Ellipse { from: a, to: b },
            Shape::Stroke { points: vec![a, b] },
            Shape::Text {
                at: a,
                text: "x".into(),
                size: 12.0,
            },
        ];
        let bytes: Vec<Vec<u8>> = shapes
            .into_iter()
            .map(|shape| {
                let mut out = Vec::new();
                let op = Op {
                    author: PeerId("a".into()),
                    seq: 1,
                    lamport: 1,
                    op: OpKind::Add {
                        shape,
                        color: Color::rgb(0, 0, 0),
                        width: 1.0,
                    },
                };
                canonical(&op, &mut out);
                out
            })
            .collect();
        for (i, x) in bytes.iter().enumerate() {
            for y in &bytes[i + 1..] {
                assert_ne!(x, y);
            }
        }
        let key = Keypair::from_seed([0xab; 32]).public();
        let lower = key.to_string();
        assert_eq!(from_hex::<32>(&lower), Some(key.0));
        assert_eq!(from_hex::<32>(&lower.to_uppercase()), Some(key.0));
        assert_eq!(from_hex::<2>("0aF9"), Some([0x0a, 0xf9]));
        assert_eq!(from_hex::<2>("0aG9"), None);
        assert_eq!(from_hex::<2>("0a9"), None);
    }

    fn serde_json_from<T: serde::de::DeserializeOwned>(s: &str) -> Result<T, serde_json::Error> {
        serde_json::from_str(s)
    }
}
