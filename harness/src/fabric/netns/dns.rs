//! The DNS server of a vNet (Azure DNS at 168.63.129.16): answers every name of the landscape by
//! the vNet's view ([`Oracle::resolve_in`](crate::fabric::oracle::Oracle::resolve_in)): the
//! privatelink CNAME, then the private endpoint's A record inside a linked vNet, the public
//! address elsewhere, NXDOMAIN for names nobody serves. UDP and TCP (Power Platform checks its
//! DNS server over TCP 53, MicrosoftDocs/power-platform:
//! power-platform/admin/vnet-support-overview.md).

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, CNAME};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::fabric::FabricHandle;
use crate::fabric::oracle::Resolution;

const TTL: u32 = 10;

/// Builds the answer to one query message; `None` when the bytes are not a DNS query.
pub fn answer(handle: &FabricHandle, vnet: Option<&str>, query: &[u8]) -> Option<Vec<u8>> {
    let q = Message::from_vec(query).ok()?;
    if q.message_type() != MessageType::Query {
        return None;
    }
    let mut r = Message::new();
    r.set_id(q.id())
        .set_message_type(MessageType::Response)
        .set_op_code(q.op_code())
        .set_recursion_desired(q.recursion_desired())
        .set_recursion_available(true);
    for question in q.queries() {
        r.add_query(question.clone());
    }
    let Some(question) = q.queries().first().filter(|_| q.op_code() == OpCode::Query) else {
        r.set_response_code(ResponseCode::NotImp);
        return r.to_vec().ok();
    };
    let name = question.name().to_ascii();
    let resolution = handle.with_oracle(|o| o.resolve_in(vnet, &name));
    let mut owner = question.name().clone();
    let (cnames, address) = match resolution {
        Resolution::Address {
            cnames, address, ..
        } => (cnames, Some(address)),
        Resolution::NxDomain { cnames } => (cnames, None),
    };
    for c in cnames {
        let Ok(target) = Name::from_ascii(format!("{c}.")) else {
            continue;
        };
        r.add_answer(Record::from_rdata(
            owner.clone(),
            TTL,
            RData::CNAME(CNAME(target.clone())),
        ));
        owner = target;
    }
    match address {
        Some(a) => {
            if matches!(question.query_type(), RecordType::A | RecordType::ANY) {
                r.add_answer(Record::from_rdata(owner, TTL, RData::A(A(a))));
            }
            // Other types of a known name: NOERROR without data, as Azure DNS answers AAAA here.
            r.set_response_code(ResponseCode::NoError);
        }
        None => {
            r.set_response_code(ResponseCode::NXDomain);
        }
    }
    r.to_vec().ok()
}

/// Serves DNS over UDP on a socket bound inside a namespace.
pub async fn serve_udp(socket: tokio::net::UdpSocket, handle: FabricHandle, vnet: Option<String>) {
    let mut buf = vec![0u8; 4096];
    loop {
        let Ok((n, peer)) = socket.recv_from(&mut buf).await else {
            continue;
        };
        if let Some(reply) = answer(&handle, vnet.as_deref(), &buf[..n]) {
            let _ = socket.send_to(&reply, peer).await;
        }
    }
}

/// Serves DNS over TCP (two-byte length prefix per message).
pub async fn serve_tcp(
    listener: tokio::net::TcpListener,
    handle: FabricHandle,
    vnet: Option<String>,
) {
    loop {
        let Ok((mut s, _)) = listener.accept().await else {
            continue;
        };
        let (handle, vnet) = (handle.clone(), vnet.clone());
        tokio::spawn(async move {
            loop {
                let mut len = [0u8; 2];
                if s.read_exact(&mut len).await.is_err() {
                    return;
                }
                let mut msg = vec![0u8; usize::from(u16::from_be_bytes(len))];
                if s.read_exact(&mut msg).await.is_err() {
                    return;
                }
                let Some(reply) = answer(&handle, vnet.as_deref(), &msg) else {
                    return;
                };
                let Ok(l) = u16::try_from(reply.len()) else {
                    return;
                };
                if s.write_all(&l.to_be_bytes()).await.is_err()
                    || s.write_all(&reply).await.is_err()
                {
                    return;
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::Query;

    fn query(name: &str, t: RecordType) -> Vec<u8> {
        let mut m = Message::new();
        m.set_id(7)
            .set_message_type(MessageType::Query)
            .set_op_code(OpCode::Query);
        m.add_query(Query::query(Name::from_ascii(name).unwrap(), t));
        m.to_vec().unwrap()
    }

    fn handle() -> FabricHandle {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/contoso.yaml");
        let l = crate::scenario::load(&path).unwrap();
        FabricHandle::new(&l, crate::fabric::FabricKind::Netns)
    }

    #[test]
    fn vault_name_answers_cname_then_private_a_record_inside_linked_vnet() {
        let h = handle();
        let r = Message::from_vec(
            &answer(
                &h,
                Some("vnet-prod-eastus"),
                &query("kv-contoso-prod.vault.azure.net.", RecordType::A),
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(r.id(), 7);
        assert_eq!(r.response_code(), ResponseCode::NoError);
        let answers: Vec<String> = r
            .answers()
            .iter()
            .map(|a| format!("{} {}", a.name(), a.data()))
            .collect();
        let pe = h.oracle().hosts()["pe-kv-contoso-prod"].address;
        assert_eq!(
            answers,
            vec![
                "kv-contoso-prod.vault.azure.net. kv-contoso-prod.privatelink.vaultcore.azure.net."
                    .to_string(),
                format!("kv-contoso-prod.privatelink.vaultcore.azure.net. {pe}"),
            ]
        );
    }

    #[test]
    fn unlinked_zone_gets_nxdomain_and_the_internet_the_public_address() {
        let h = handle();
        let r = Message::from_vec(
            &answer(
                &h,
                Some("vnet-test-westus"),
                &query("kv-contoso-prod.vault.azure.net.", RecordType::A),
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(r.response_code(), ResponseCode::NXDomain);
        let r = Message::from_vec(
            &answer(
                &h,
                None,
                &query("login.microsoftonline.com.", RecordType::A),
            )
            .unwrap(),
        )
        .unwrap();
        let entra = h.oracle().services()["entra"].public_address;
        assert_eq!(
            r.answers().last().unwrap().data().to_string(),
            entra.to_string()
        );
        let r = Message::from_vec(
            &answer(
                &h,
                None,
                &query("login.microsoftonline.com.", RecordType::AAAA),
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(
            (r.response_code(), r.answers().len()),
            (ResponseCode::NoError, 0)
        );
        assert!(answer(&h, None, b"garbage").is_none());
    }
}
