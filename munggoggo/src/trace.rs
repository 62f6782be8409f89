//! TEMPORARY STUB (replaced by the real TraceStore).
#![allow(missing_docs)]
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;
use bytes::Bytes;
use crate::message::{DeliveryInfo, Properties, Received};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Category { Incoming, Outgoing, Behaviour(Arc<str>), Rejected }
impl Category {
    pub fn as_str(&self) -> &str { match self { Category::Incoming => "incoming", Category::Outgoing => "outgoing", Category::Behaviour(n) => n, Category::Rejected => "rejected" } }
}
#[derive(Debug, Clone)]
pub struct TraceRecord { pub body: Bytes, pub properties: Properties, pub delivery: DeliveryInfo, pub target: String, pub outgoing: bool, pub reason: Option<String> }
impl TraceRecord {
    pub fn incoming(r: &Received) -> Self { TraceRecord { body: r.body.clone(), properties: r.properties.clone(), delivery: r.delivery.clone(), target: String::new(), outgoing: false, reason: None } }
    pub fn outgoing(target: &str, routing_key: &str, props: &Properties, body: Bytes) -> Self { TraceRecord { body, properties: props.clone(), delivery: DeliveryInfo { routing_key: routing_key.to_owned(), ..Default::default() }, target: target.to_owned(), outgoing: true, reason: None } }
    pub fn with_reason(mut self, r: String) -> Self { self.reason = Some(r); self }
}
#[derive(Debug, Clone)]
pub struct TraceEntry { pub time: SystemTime, pub category: Category, pub record: Arc<TraceRecord> }
#[derive(Debug, Clone)]
pub struct TraceStore { inner: Arc<Mutex<VecDeque<TraceEntry>>>, cap: usize }
impl TraceStore {
    pub fn new(cap: usize) -> Self { TraceStore { inner: Arc::default(), cap } }
    pub fn append(&self, category: Category, record: TraceRecord) { let mut q = self.inner.lock().unwrap(); if q.len() == self.cap { q.pop_back(); } q.push_front(TraceEntry { time: SystemTime::now(), category, record: Arc::new(record) }); }
    pub fn filter(&self, limit: Option<usize>, sender: Option<&str>, category: Option<&str>) -> Vec<TraceEntry> {
        let q = self.inner.lock().unwrap();
        let mut v: Vec<TraceEntry> = q.iter().filter(|e| sender.is_none_or(|s| e.record.properties.app_id.as_deref() == Some(s) && !e.record.outgoing) && category.is_none_or(|c| e.category.as_str() == c)).take(limit.unwrap_or(usize::MAX)).cloned().collect();
        v.reverse(); v
    }
    pub fn sent(&self, limit: Option<usize>) -> Vec<TraceEntry> { self.filter(limit, None, Some("outgoing")) }
    pub fn received(&self, limit: Option<usize>) -> Vec<TraceEntry> { self.filter(limit, None, Some("incoming")) }
}
